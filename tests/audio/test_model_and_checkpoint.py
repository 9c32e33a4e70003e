"""SpectrogramViT and load_checkpoint against AudioMAE's own forward on a synthetic checkpoint with its names."""

import pytest
import torch
from safetensors.torch import save_file

from tokenmerge.audio import SpectrogramViT, create_model, load_checkpoint

from .audiomae_reference import audiomae_forward, synthetic_audiomae_state

TINY = dict(target_length=64, num_mel_bins=32, patch_size=16, embed_dim=32, depth=2, num_heads=4)


def _spectrograms(batch=2):
    return torch.randn(batch, 1, 64, 32, generator=torch.Generator().manual_seed(3))


def _state():
    return synthetic_audiomae_state(frames=64, bins=32, patch=16, dim=32, depth=2, classes=5)


def test_audiomae_checkpoint_gives_audiomae_logits(tmp_path):
    state = _state()
    path = tmp_path / "audiomae_finetuned.pth"
    torch.save({"model": state, "optimizer": {}, "epoch": 60}, path)
    model = load_checkpoint(SpectrogramViT(**TINY, num_classes=5), path).eval()
    expected = audiomae_forward(state, _spectrograms(), patch=16, heads=4)
    torch.testing.assert_close(model(_spectrograms()), expected, rtol=1e-4, atol=1e-5)


def test_safetensors_round_trip_and_class_token_head(tmp_path):
    torch.manual_seed(0)
    model = SpectrogramViT(**TINY, num_classes=5, global_pool=False).eval()
    assert "norm.weight" in model.state_dict() and "fc_norm.weight" not in model.state_dict()
    save_file(model.state_dict(), str(tmp_path / "w.safetensors"))
    other = load_checkpoint(SpectrogramViT(**TINY, num_classes=5, global_pool=False), tmp_path / "w.safetensors")
    assert torch.equal(model(_spectrograms()), other.eval()(_spectrograms()))


def test_bad_checkpoints_name_the_keys(tmp_path):
    state = _state()
    state["decoder_pos_embed"] = torch.zeros(1, 9, 16)
    del state["fc_norm.bias"]
    state["pos_embed"] = torch.zeros(1, 17, 32)  # a model of another target length
    torch.save({"model": state}, tmp_path / "bad.pth")
    with pytest.raises(ValueError) as info:
        load_checkpoint(SpectrogramViT(**TINY, num_classes=5), tmp_path / "bad.pth")
    message = str(info.value)
    assert "missing (1): fc_norm.bias" in message
    assert "unexpected (1): decoder_pos_embed" in message
    assert "pos_embed: checkpoint (1, 17, 32) vs model (1, 9, 32)" in message
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(SpectrogramViT(**TINY), tmp_path / "nope.pth")


def test_layout_and_input_errors():
    model = SpectrogramViT(**TINY, num_classes=5)
    assert model.grid == (4, 2) and model.pos_embed.shape == (1, 9, 32)
    assert model.blocks[0].norm1.eps == 1e-6 and model.fc_norm.eps == 1e-6
    with pytest.raises(ValueError, match=r"\[B, 1, 64, 32\].*fbank"):
        model(torch.randn(1, 1, 32, 64))  # frequency first: the common mistake
    with pytest.raises(ValueError, match="target_length=100 is not a multiple of the patch's 16"):
        SpectrogramViT(target_length=100, num_mel_bins=128)


def test_rectangular_patches_tokenize_time_frames_of_the_whole_spectrum():
    model = SpectrogramViT(**{**TINY, "patch_size": [2, 32]}, num_classes=5)  # a list, as the arch metadata holds it
    assert model.grid == (32, 1) and model.pos_embed.shape == (1, 33, 32) and model.arch["patch_size"] == [2, 32]
    x = torch.randn(2, 1, 64, 32)
    tokens = model.patch_embed(x)  # token t holds frames 2t and 2t + 1 of every bin
    weight, bias = model.patch_embed.proj.weight, model.patch_embed.proj.bias  # [32, 1, 2, 32]
    torch.testing.assert_close(tokens[:, 5], torch.einsum("bcft,dcft->bd", x[:, :, 10:12], weight) + bias)
    assert SpectrogramViT(**model.arch).grid == (32, 1)
    with pytest.raises(ValueError, match="num_mel_bins=32 is not a multiple of the patch's 24"):
        SpectrogramViT(**{**TINY, "patch_size": (2, 24)})


def test_audioset_configuration_has_512_tokens():
    base = create_model("vit_base_patch16", depth=1)  # one block keeps the test small
    assert base.grid == (64, 8) and base.pos_embed.shape == (1, 513, 768) and base.num_classes == 527
    with pytest.raises(ValueError, match="vit_base_patch16"):
        create_model("vit_tiny")
