"""Merging in models built on ``torch.nn.MultiheadAttention``: torchvision's ViT and ``nn.TransformerEncoder`` models.

Each equals its unpatched model at r = 0 and the paper's algorithm (tests/core/paper_reference.py) in float64 at r > 0.
"""

import pytest
import torch
from torch import nn
from torchvision.models.vision_transformer import VisionTransformer

from tests.core import paper_reference
from tests.core.test_paper_reference import EXACT, _randomize
from tokenmerge.adapters import TorchvisionViTAdapter, TransformerEncoderAdapter, transformer_encoder_layout
from tokenmerge.core import BlockLayout, patch_model, size_weighted_mean


def _torchvision_vit():
    torch.manual_seed(0)
    model = VisionTransformer(image_size=32, patch_size=4, num_layers=3, num_heads=4, hidden_dim=32, mlp_dim=64)
    return model.eval()


class TokenClassifier(nn.Module):
    """Token ids -> class token + embeddings -> nn.TransformerEncoder -> mean of the tokens -> logits."""

    def __init__(self, norm_first: bool, batch_first: bool):
        super().__init__()
        self.batch_first = batch_first
        self.embedding, self.cls = nn.Embedding(50, 32), nn.Parameter(torch.randn(1, 1, 32))
        layer = nn.TransformerEncoderLayer(
            32, 4, 64, dropout=0.1, activation="gelu", norm_first=norm_first, batch_first=batch_first
        )
        final = nn.LayerNorm(32) if norm_first else None
        self.encoder = nn.TransformerEncoder(layer, 3, norm=final, enable_nested_tensor=False)
        self.head = nn.Linear(32, 3)

    def tokens(self, ids):
        return torch.cat([self.cls.expand(ids.shape[0], -1, -1), self.embedding(ids)], 1)

    def forward(self, ids):
        x = self.tokens(ids)
        x = self.encoder(x if self.batch_first else x.transpose(0, 1))
        return self.head((x if self.batch_first else x.transpose(0, 1)).mean(1))


class TokenClassifierAdapter(TransformerEncoderAdapter):
    """What the model does around its encoder: embed (batch first), the protected class token, the head."""

    def protected(self, model):
        return 1

    def embed(self, model, ids):
        return model.tokens(ids)

    def head(self, model, x, state, pre_logits=False):
        pooled = size_weighted_mean(x, state.size)
        return pooled if pre_logits else model.head(pooled)


def _ids(batch=3, length=20):
    return torch.randint(0, 50, (batch, length), generator=torch.Generator().manual_seed(1))


def test_torchvision_vit_at_r0_equals_the_unpatched_model_and_remove_restores():
    model, x = _torchvision_vit(), torch.randn(2, 3, 32, 32)
    expected = model(x)
    handle = patch_model(model, TorchvisionViTAdapter(), r=0)
    torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-6)
    handle.config.r = 8
    tokens, state = handle.forward_tokens(x)
    assert tokens.shape[1] == 65 - 3 * 8 and torch.equal(state.size.sum(1), torch.full((2, 1), 65.0))
    handle.remove()
    assert torch.equal(model(x), expected)


@pytest.mark.parametrize("prop_attn, attention", [(True, "mask"), (True, "folded"), (False, "mask")])
def test_torchvision_vit_equals_the_paper(prop_attn, attention):
    model = _randomize(_torchvision_vit(), seed=3)
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    handle = patch_model(model, TorchvisionViTAdapter(), r=[8, 8, 30], prop_attn=prop_attn, attention=attention)
    tokens, state = handle.forward_tokens(images)
    expected = paper_reference.torchvision_vit(model, images, handle.schedule(65), prop_attn)
    assert tokens.shape[1] == expected[0].shape[1] == 65 - 8 - 8 - 24
    torch.testing.assert_close(tokens, expected[0], **EXACT)
    torch.testing.assert_close(state.size[..., 0], expected[1], **EXACT)
    torch.testing.assert_close(model(images), expected[2], **EXACT)


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("batch_first", [True, False])
def test_transformer_encoder_models_at_r0_equal_the_unpatched_model(norm_first, batch_first):
    torch.manual_seed(0)
    model, ids = TokenClassifier(norm_first, batch_first).eval(), _ids()
    expected = model(ids)
    attention = model.encoder.layers[0].self_attn
    tokens = torch.randn(3, 21, 32) if batch_first else torch.randn(21, 3, 32)
    weights = attention(tokens, tokens, tokens, need_weights=True)[1]
    handle = patch_model(model, TokenClassifierAdapter(), r=0)
    torch.testing.assert_close(model(ids), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(attention(tokens, tokens, tokens, need_weights=True)[1], weights)  # left alone
    assert handle.adapter.layout.norm_first is norm_first
    handle.config.r = 4
    assert handle.forward_tokens(ids)[0].shape[1] == 21 - 3 * 4
    handle.remove()
    assert torch.equal(model(ids), expected)


@pytest.mark.parametrize("norm_first", [True, False])
def test_transformer_encoder_equals_the_paper(norm_first):
    torch.manual_seed(0)
    model, ids = _randomize(TokenClassifier(norm_first, batch_first=True), seed=4), _ids()
    handle = patch_model(model, TokenClassifierAdapter(), r=[4, 4, 30])
    tokens, state = handle.forward_tokens(ids)
    expected = paper_reference.transformer_encoder(model.encoder, model.tokens(ids), handle.schedule(21), True, 1)
    assert tokens.shape[1] == expected[0].shape[1] == 21 - 4 - 4 - 6  # the last r clamps to (13 - 1) // 2
    torch.testing.assert_close(tokens, expected[0], **EXACT)
    torch.testing.assert_close(state.size[..., 0], expected[1], **EXACT)


def test_layouts_that_name_a_weight_or_an_unsupported_attention_are_refused_at_patch_time():
    model = TokenClassifier(True, True).eval()
    wrong = BlockLayout(
        norm_first=True,
        attn_norm="norm1",
        mlp_norm="norm2",
        num_heads="self_attn.num_heads",
        multihead_attention="self_attn.in_proj_weight",
        attn_out=("self_attn.out_proj",),
        mlp=("linear1", "linear2"),
    )

    class WrongLayout(TokenClassifierAdapter):
        def check(self, model):
            self.layout = wrong
            super(TransformerEncoderAdapter, self).check(model)

    with pytest.raises(TypeError, match="multihead_attention='self_attn.in_proj_weight' is a Parameter, not a module"):
        patch_model(model, WrongLayout(), r=2)
    with_bias_kv = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True, norm_first=True)
    with_bias_kv.self_attn = nn.MultiheadAttention(32, 4, add_bias_kv=True, batch_first=True)
    model.encoder.layers[1] = with_bias_kv
    with pytest.raises(TypeError, match="add_bias_kv"):
        patch_model(model, TokenClassifierAdapter(), r=2)
    assert transformer_encoder_layout(False).norm_first is False
