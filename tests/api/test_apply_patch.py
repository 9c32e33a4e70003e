"""``tokenmerge.apply_patch`` finds every built-in family: r=0 equals the unpatched model, r>0 merges (sizes sum to
the token count, r fewer tokens per block), remove() restores; other models get one message saying what to do."""

import pytest
import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn
from torchvision.models import VisionTransformer as TorchvisionViT

import tokenmerge
from tests.adapters.test_multihead_attention import TokenClassifier, TokenClassifierAdapter, _ids
from tokenmerge.audio import SpectrogramViT
from tokenmerge.video import SpatiotemporalViT


def _families():
    torch.manual_seed(0)
    return {
        "timm ViT": (
            VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=4),
            torch.randn(2, 3, 32, 32),
        ),
        "timm ViT with registers and LayerScale": (
            VisionTransformer(
                img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, reg_tokens=2, init_values=0.1
            ),
            torch.randn(2, 3, 32, 32),
        ),
        "video": (
            SpatiotemporalViT(num_frames=4, img_size=16, patch_size=4, embed_dim=32, depth=2, num_heads=2),
            torch.randn(2, 3, 4, 16, 16),
        ),
        "audio": (
            SpectrogramViT(target_length=64, num_mel_bins=32, embed_dim=32, depth=2, num_heads=2, num_classes=3),
            torch.randn(2, 1, 64, 32),
        ),
        "torchvision ViT": (
            TorchvisionViT(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64),
            torch.randn(2, 3, 32, 32),
        ),
    }


@pytest.mark.parametrize("family", list(_families()))
def test_every_built_in_family_patches_through_one_call(family):
    model, inputs = _families()[family]
    model = model.double().eval()
    inputs = inputs.double()
    with torch.no_grad():
        expected = model(inputs)
        handle = tokenmerge.apply_patch(model, r=0)
        assert torch.allclose(model(inputs), expected, rtol=0, atol=1e-12)
        handle.remove()
        handle = tokenmerge.apply_patch(model, r=2, trace_source=True)
        tokens, state = handle.forward_tokens(inputs)
        start = state.source.shape[-1]  # [B, N', N]: N tokens entered the first block
        assert tokens.shape[1] == state.size.shape[1] == handle.tokens_per_layer(start)[-1] == start - 2 * 2
        assert torch.allclose(state.size.sum(1), torch.full_like(state.size.sum(1), state.source.shape[-1]))
        assert model(inputs).shape == expected.shape
        handle.remove()
        assert torch.equal(model(inputs), expected)


def test_the_video_family_keeps_its_merge_scope():
    model, inputs = _families()["video"]
    handle = tokenmerge.apply_patch(model.eval(), r=4, merge_scope="frame")
    assert handle.merge_scope == "frame" and handle.schedule(65) == [4, 4]
    handle.remove()


def test_a_model_of_no_known_family_gets_one_message_with_what_to_do():
    with pytest.raises(TypeError) as info:
        tokenmerge.apply_patch(nn.Sequential(nn.Linear(4, 4)), r=2)
    message = str(info.value)
    assert "torch.nn.modules.container.Sequential" in message and "ModelAdapter" in message
    assert "check_adapter" in message and "adapter=" in message
    hint = r"nn.TransformerEncoder at model.encoder: subclass .*TransformerEncoderAdapter"
    with pytest.raises(TypeError, match=hint):
        tokenmerge.apply_patch(TokenClassifier(norm_first=True, batch_first=True), r=2)


def test_any_model_patches_with_its_own_adapter():
    torch.manual_seed(0)
    model = TokenClassifier(norm_first=True, batch_first=True).double().eval()
    with torch.no_grad():
        expected = model(_ids())
        handle = tokenmerge.apply_patch(model, r=0, adapter=TokenClassifierAdapter())
        assert torch.allclose(model(_ids()), expected, rtol=0, atol=1e-12)
        handle.remove()
    assert tokenmerge.supported_families()[0].startswith("tokenmerge.video")
