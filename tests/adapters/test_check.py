"""``tokenmerge.check_adapter`` passes exact adapters and names what is missing from a wrong one, even where random
weights hide it (LayerScale starts at 1)."""

import dataclasses

import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

import tokenmerge
from tests.adapters.test_multihead_attention import TokenClassifier, TokenClassifierAdapter, _ids
from tokenmerge.adapters import TimmViTAdapter
from tokenmerge.core import TIMM_BLOCK


def _vit():
    torch.manual_seed(0)
    return VisionTransformer(
        img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, reg_tokens=2, init_values=1.0, num_classes=3
    )


class WithoutLayerScale(TimmViTAdapter):
    layout = dataclasses.replace(TIMM_BLOCK, attn_residual=("drop_path1",), mlp_residual=("drop_path2",))


class WithoutPositions(TimmViTAdapter):
    def embed(self, model, images):
        return model.patch_embed(images)  # forgets the prefix tokens and position embeddings


def test_an_exact_adapter_passes_and_the_model_is_left_alone():
    model = _vit()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = tokenmerge.check_adapter(model, TimmViTAdapter(), torch.randn(2, 3, 32, 32))
    assert report.ok and report.max_difference < 1e-12 and report.tokens_per_block == [19, 17, 15]
    assert "adapter OK" in str(report) and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    text = tokenmerge.check_adapter(
        TokenClassifier(norm_first=False, batch_first=False), TokenClassifierAdapter(), _ids()
    )
    assert text.ok, str(text)


def test_a_layout_without_layer_scale_is_caught_although_random_weights_hide_it():
    model, images = _vit(), torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        plain = model(images)
        handle = tokenmerge.apply_patch(model, r=0, adapter=WithoutLayerScale())
        hidden = (model(images) - plain).abs().max().item()
        handle.remove()
    assert hidden < 1e-6  # what a bare allclose on random weights sees: LayerScale starts at 1 (as in DINOv2)
    report = tokenmerge.check_adapter(model, WithoutLayerScale(), images)
    assert not report.ok and report.max_difference > 1e-3
    assert "the layout never uses ls1.gamma, ls2.gamma" in str(report)


def test_a_wrong_embed_is_named():
    report = tokenmerge.check_adapter(_vit(), WithoutPositions(), torch.randn(2, 3, 32, 32))
    assert not report.ok and any("adapter.embed differs" in problem for problem in report.problems)


def test_a_patched_model_is_refused_with_what_to_do():
    model = VisionTransformer(img_size=16, patch_size=8, embed_dim=16, depth=1, num_heads=2, num_classes=2)
    handle = tokenmerge.apply_patch(model, r=1)
    with pytest.raises(ValueError, match="patched already .* handle.remove"):
        tokenmerge.check_adapter(model, handle.adapter, torch.randn(1, 3, 16, 16))
