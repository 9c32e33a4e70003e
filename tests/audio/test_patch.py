"""The audio adapter: r=0 equals the unpatched model (both heads); schedules, sizes and the class token."""

import pytest
import torch

from tokenmerge.audio import SpectrogramViT, apply_patch
from tokenmerge.core import TokenState

TINY = dict(target_length=64, num_mel_bins=64, patch_size=8, embed_dim=32, depth=3, num_heads=2, num_classes=5)
N = 1 + 8 * 8


def _model(**overrides):
    torch.manual_seed(0)
    return SpectrogramViT(**{**TINY, **overrides}).eval()


def _spectrograms(batch=2):
    return torch.randn(batch, 1, 64, 64, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("global_pool", [True, False])
@pytest.mark.parametrize("method", ["tome", "random_merge", "random_drop"])
def test_r0_equals_unpatched_and_remove_restores(global_pool, method):
    model, x = _model(global_pool=global_pool), _spectrograms()
    expected = model(x)
    handle = apply_patch(model, r=0, method=method)
    torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-6)
    handle.config.r = 8
    assert not torch.allclose(model(x), expected)
    handle.remove()
    assert torch.equal(model(x), expected) and "forward" not in model.__dict__


def test_schedule_sizes_and_class_token():
    model = _model()
    handle = apply_patch(model, r=10)
    tokens, state = handle.forward_tokens(_spectrograms(), trace_source=True)
    assert handle.tokens_per_layer(N) == [65, 55, 45, 35] and tokens.shape == (2, 35, 32)
    assert torch.equal(state.size[..., 0].sum(1), torch.full((2,), float(N)))
    assert state.source[:, 0, 0].eq(1).all() and state.source[:, 0, 1:].eq(0).all()  # class token alone
    assert torch.equal(state.source.sum(-1), state.size[..., 0])


def test_mean_pool_is_size_weighted():
    """Two patch tokens replaced by their mean with size 2 must pool to the same features as the two tokens."""
    model = _model(depth=1)
    handle = apply_patch(model, r=0)
    tokens, _ = handle.forward_tokens(_spectrograms(1))
    ones = TokenState(size=torch.ones(1, tokens.shape[1], 1))
    merged = torch.cat([tokens[:, :1], tokens[:, 1:3].mean(1, keepdim=True), tokens[:, 3:]], dim=1)
    size = torch.cat([torch.ones(1, 1, 1), torch.full((1, 1, 1), 2.0), torch.ones(1, tokens.shape[1] - 3, 1)], 1)
    pooled = handle.forward_head(merged, TokenState(size=size), pre_logits=True)
    torch.testing.assert_close(pooled, handle.forward_head(tokens, ones, pre_logits=True))
    unweighted = handle.forward_head(merged, TokenState(size=torch.ones_like(size)), pre_logits=True)
    assert not torch.allclose(unweighted, pooled)


def test_bad_settings_fail_at_apply():
    model = _model()
    with pytest.raises(ValueError):
        apply_patch(model, r=-1)
    with pytest.raises(ValueError, match="random_drop"):
        apply_patch(model, r=2, method="bogus")
    handle = apply_patch(model, r=2)
    with pytest.raises(ValueError, match=r"\[B, 1, 64, 64\]"):
        model(torch.randn(1, 1, 64, 32))
    handle.remove()
