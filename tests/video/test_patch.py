"""The video adapter: r=0 equals the unpatched model in both scopes; what each scope may merge; schedules."""

import pytest
import torch

from tokenmerge.core import unmerge_with_source
from tokenmerge.video import SpatiotemporalViT, apply_patch

TINY = dict(num_frames=8, t_patch_size=2, img_size=16, patch_size=4, embed_dim=32, depth=3, num_heads=2)
N = 1 + 4 * 16  # class token + 4 time slices x 16 patches


def _model(**overrides):
    torch.manual_seed(0)
    return SpatiotemporalViT(**{**TINY, "num_classes": 5, **overrides}).eval()


def _clips(batch=2, static=False):
    g = torch.Generator().manual_seed(1)
    if static:  # the same frame repeated: tokens at one position are identical over time
        return torch.randn(batch, 3, 1, 16, 16, generator=g).expand(-1, -1, 8, -1, -1).contiguous()
    return torch.randn(batch, 3, 8, 16, 16, generator=g)


@pytest.mark.parametrize("scope", ["spacetime", "frame"])
@pytest.mark.parametrize("cls_embed", [True, False])
def test_r0_equals_unpatched_and_remove_restores(scope, cls_embed):
    model, x = _model(cls_embed=cls_embed), _clips()
    expected = model(x)
    handle = apply_patch(model, r=0, merge_scope=scope)
    torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-6)
    handle.config.r = 8
    assert not torch.allclose(model(x), expected)
    handle.remove()
    assert torch.equal(model(x), expected) and "forward" not in model.__dict__


def _slice_of_each_source(source):
    """[B, N', N] source map -> for every final patch token, the set of time slices its patches come from."""
    patches = source[:, 1:, 1:]  # drop the class token on both axes
    per_slice = patches.reshape(*patches.shape[:2], 4, 16).amax(-1)  # [B, N'-1, 4]
    return per_slice.sum(-1)


def test_frame_scope_never_merges_across_time_and_spacetime_does():
    model = _model()
    handle = apply_patch(model, r=12, merge_scope="frame")
    _, state = handle.forward_tokens(_clips(static=True), trace_source=True)
    assert torch.equal(_slice_of_each_source(state.source), torch.ones_like(_slice_of_each_source(state.source)))
    handle.config.merge_scope = "spacetime"
    _, state = handle.forward_tokens(_clips(static=True), trace_source=True)
    assert (_slice_of_each_source(state.source) > 1).any()  # identical tokens over time merged together


@pytest.mark.parametrize("scope", ["spacetime", "frame"])
def test_sizes_schedule_and_class_token(scope):
    model = _model()
    handle = apply_patch(model, r=6, merge_scope=scope)
    tokens, state = handle.forward_tokens(_clips(), trace_source=True)
    schedule = handle.schedule(N)
    assert tokens.shape[1] == N - sum(schedule)
    if scope == "frame":
        assert all(r % 4 == 0 for r in schedule) and schedule == [4, 8, 4]  # running totals 4, 12, 16 of 6, 12, 18
    else:
        assert schedule == [6, 6, 6]
    assert state.size.dtype == torch.float32
    torch.testing.assert_close(state.size.sum(1), torch.full((2, 1), float(N)))
    assert torch.equal(state.source[:, 0, 0], torch.ones(2)) and state.size[:, 0].eq(1).all()
    # the head's size-weighted mean equals the mean over all unmerged patches
    full = unmerge_with_source(tokens, state.source)[:, 1:]
    torch.testing.assert_close(model(_clips()), model.head(model.norm(full.mean(1))), rtol=1e-4, atol=1e-5)


def test_frame_scope_keeps_every_slice_equal_and_random_drop_works():
    model = _model()
    handle = apply_patch(model, r=[8, 8, 8], merge_scope="frame", method="random_drop")
    tokens, _ = handle.forward_tokens(_clips())
    assert tokens.shape[1] == N - 24
    handle.config.method = "random_merge"
    assert model(_clips()).shape == (2, 5)


def test_bad_settings_fail_at_apply_patch():
    model = _model()
    with pytest.raises(ValueError, match="merge_scope"):
        apply_patch(model, r=4, merge_scope="space")
    with pytest.raises(ValueError, match=">= 0"):
        apply_patch(model, r=-1)
    handle = apply_patch(model, r=4)
    with pytest.raises(ValueError, match="one r per layer"):
        handle.config.r = [1, 2]
    assert handle.config.r == 4 and handle.active
