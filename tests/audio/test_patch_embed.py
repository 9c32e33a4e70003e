"""SpectrumPatchEmbed: full-width spectrogram patches as a matrix product, equal to timm's convolution."""

import copy

import pytest
import torch
from timm.layers import PatchEmbed

from tokenmerge.audio.model import SpectrogramViT
from tokenmerge.audio.patch_embed import SpectrumPatchEmbed


def embed_pair(patch, size, channels):
    """(SpectrumPatchEmbed, timm PatchEmbed) with the same weights."""
    torch.manual_seed(0)
    ours = SpectrumPatchEmbed(img_size=size, patch_size=patch, in_chans=channels, embed_dim=24)
    timm_embed = PatchEmbed(img_size=size, patch_size=patch, in_chans=channels, embed_dim=24)
    timm_embed.load_state_dict(ours.state_dict())
    return ours, timm_embed


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("frames", [1, 2, 4])
def test_full_width_patches_equal_the_convolution(frames, channels):
    ours, timm_embed = embed_pair((frames, 16), (8, 16), channels)
    x = torch.randn(3, channels, 8, 16, dtype=torch.float64)
    ours.double(), timm_embed.double()
    assert ours._spans_width(8, 16)
    torch.testing.assert_close(ours(x), timm_embed(x), rtol=0, atol=1e-12)


def test_square_patches_run_the_convolution():
    ours, timm_embed = embed_pair((4, 4), (8, 16), 1)
    x = torch.randn(2, 1, 8, 16)
    assert not ours._spans_width(8, 16)
    assert torch.equal(ours(x), timm_embed(x))


def test_a_wrong_input_size_still_gets_timms_error():
    ours, _ = embed_pair((2, 16), (8, 16), 1)
    with pytest.raises(AssertionError, match="doesn't match model"):
        ours(torch.randn(1, 1, 6, 16))


def test_the_model_keeps_timms_keys_and_outputs():
    """A SpectrogramViT with full-width patches gives what the same weights give through timm's convolution."""
    torch.manual_seed(0)
    model = SpectrogramViT(target_length=8, num_mel_bins=16, patch_size=(2, 16), embed_dim=32, depth=1, num_heads=2)
    model.eval()
    assert isinstance(model.patch_embed, SpectrumPatchEmbed)
    assert {"patch_embed.proj.weight", "patch_embed.proj.bias"} <= set(model.state_dict())
    convolving = copy.deepcopy(model)
    convolving.patch_embed = PatchEmbed(img_size=(8, 16), patch_size=(2, 16), in_chans=1, embed_dim=32)
    convolving.patch_embed.load_state_dict(model.patch_embed.state_dict())
    x = torch.randn(2, 1, 8, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(x), convolving(x), rtol=1e-5, atol=1e-5)
