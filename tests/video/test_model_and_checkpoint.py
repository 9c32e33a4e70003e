"""SpatiotemporalViT and load_checkpoint against MAE-ST's own forward on a synthetic checkpoint with MAE-ST's names."""

import pytest
import torch
from safetensors.torch import save_file

from tokenmerge.video import SpatiotemporalViT, create_model, load_checkpoint

from .mae_st_reference import mae_st_forward, synthetic_mae_st_state

TINY = dict(num_frames=4, t_patch_size=2, img_size=16, patch_size=4, embed_dim=32, depth=2, num_heads=2)


def _clips(batch=2):
    return torch.randn(batch, 3, 4, 16, 16, generator=torch.Generator().manual_seed(3))


def _state():
    return synthetic_mae_st_state(frames=4, t_patch=2, img=16, patch=4, dim=32, depth=2, classes=5)


@pytest.mark.parametrize("wrapper", ["model", "model_state"])
def test_mae_st_checkpoint_gives_mae_st_logits(tmp_path, wrapper):
    state = _state()
    path = tmp_path / "mae_st.pth"
    torch.save({wrapper: state, "epoch": 3}, path)
    model = load_checkpoint(SpatiotemporalViT(**TINY, num_classes=5), path).eval()
    expected = mae_st_forward(state, _clips(), t_patch=2, patch=4, heads=2)
    torch.testing.assert_close(model(_clips()), expected, rtol=1e-4, atol=1e-5)


def test_safetensors_round_trip(tmp_path):
    torch.manual_seed(0)
    model = SpatiotemporalViT(**TINY, num_classes=5).eval()
    save_file(model.state_dict(), str(tmp_path / "w.safetensors"))
    other = load_checkpoint(SpatiotemporalViT(**TINY, num_classes=5), tmp_path / "w.safetensors").eval()
    assert torch.equal(model(_clips()), other(_clips()))


def test_bad_checkpoints_name_the_keys(tmp_path):
    state = _state()
    state["decoder_embed.weight"] = torch.zeros(2, 2)
    del state["pos_embed_temporal"]
    state["head.weight"] = torch.zeros(7, 32)
    torch.save({"model": state}, tmp_path / "bad.pth")
    with pytest.raises(ValueError) as info:
        load_checkpoint(SpatiotemporalViT(**TINY, num_classes=5), tmp_path / "bad.pth")
    message = str(info.value)
    assert "missing (1): pos_embed_temporal" in message
    assert "unexpected (1): decoder_embed.weight" in message
    assert "head.weight: checkpoint (7, 32) vs model (5, 32)" in message
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(SpatiotemporalViT(**TINY), tmp_path / "nope.pth")


def test_layout_and_position_tables():
    model = SpatiotemporalViT(**TINY, num_classes=5)
    assert model.patch_embed.grid_size == (2, 4, 4) and model.time_slices == 2
    pos = model.position_embedding()
    assert pos.shape == (1, 33, 32)
    # time-major: token 1 + t * 16 + s has spatial entry s plus temporal entry t
    torch.testing.assert_close(pos[0, 1 + 16 + 5], model.pos_embed_spatial[0, 5] + model.pos_embed_temporal[0, 1])
    joint = SpatiotemporalViT(**TINY, sep_pos_embed=False, cls_embed=False)
    assert joint.pos_embed.shape == (1, 32, 32) and joint(_clips()).shape == (2, 400)
    with pytest.raises(ValueError, match=r"\[B, 3, 4, 16, 16\]"):
        model(torch.randn(1, 3, 8, 16, 16))


def test_named_configurations_have_mae_st_sizes():
    large = create_model("vit_large_patch16", depth=1)  # one block keeps the test small
    assert large.patch_embed.num_patches == 1568 and large.embed_dim == 1024
    assert large.blocks[0].norm1.eps == 1e-6
    with pytest.raises(ValueError, match="vit_base_patch16"):
        create_model("vit_tiny")


def test_a_mae_st_pretraining_checkpoint_loads_its_encoder_and_a_fresh_head(tmp_path):
    state = {k: v for k, v in _state().items() if not k.startswith("head.")}  # pre-training: no head
    state |= {"mask_token": torch.zeros(1, 1, 16), "decoder_embed.weight": torch.zeros(16, 32)}
    state |= {"decoder_pos_embed_spatial": torch.zeros(1, 16, 16), "decoder_norm.weight": torch.ones(16)}
    torch.save({"model": state}, tmp_path / "pretrain.pth")
    from tokenmerge.video.checkpoint import load_pretrained_encoder

    model = SpatiotemporalViT(**TINY, num_classes=3)
    skipped = load_pretrained_encoder(model, tmp_path / "pretrain.pth")
    assert skipped == ["decoder_embed.weight", "decoder_norm.weight", "decoder_pos_embed_spatial", "mask_token"]
    fused = torch.cat([state[f"blocks.1.attn.{n}.weight"] for n in "qkv"])
    assert torch.equal(model.blocks[1].attn.qkv.weight, fused) and torch.equal(model.norm.weight, state["norm.weight"])
    assert 1e-5 < model.head.weight.std() < 4e-5 and model.head.bias.abs().max() == 0  # trunc_normal(std=2e-5)
    del state["blocks.1.attn.k.weight"]
    torch.save({"model": state}, tmp_path / "broken.pth")
    with pytest.raises(ValueError, match=r"lacks blocks\.1\.attn\.k\.weight"):
        load_pretrained_encoder(model, tmp_path / "broken.pth")


def test_a_fine_tuned_checkpoint_without_one_projection_names_it(tmp_path):
    state = _state()
    del state["blocks.1.attn.k.weight"]
    torch.save({"model": state}, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match=r"lacks blocks\.1\.attn\.k\.weight") as info:
        load_checkpoint(SpatiotemporalViT(**TINY, num_classes=5), tmp_path / "partial.pth")
    assert "qkv" not in str(info.value).split("lacks")[1]
