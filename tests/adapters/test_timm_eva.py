"""timm's Eva models (EVA-02, rotary-position ViTs): r=0 equals the unpatched model, r>0 equals the independent RoPE
reference (positions carried and merged by the size-weighted mean), the position rules do what they say, and the
designs that do not fit are refused with the reason."""

import pytest
import timm
import torch
from timm.models.eva import Eva

import tokenmerge
from tests.core import rope_reference
from tokenmerge.adapters import EvaAdapter
from tokenmerge.core import Matching
from tokenmerge.core.positions import merge_positions

SMALL = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=5)
CONFIGS = {
    # EVA-02: absolute and rotary positions, separate projections, SwiGLU with a sub-LayerNorm, rescaled grid
    "eva02": dict(
        qkv_fused=False, mlp_ratio=4 * 2 / 3, swiglu_mlp=True, scale_mlp=True, use_rot_pos_emb=True,
        ref_feat_shape=(8, 8),
    ),
    # fused qkv with q/v biases apart, LayerScale, rotate-half layout
    "eva-fused-layerscale": dict(use_rot_pos_emb=True, init_values=0.1, rope_rotate_half=True),
    # timm's vit_*_rope_reg*_gap: no absolute positions, a register token, average pooling
    "rope-register-avg": dict(
        class_token=False, num_reg_tokens=1, global_pool="avg", use_rot_pos_emb=True, use_abs_pos_emb=False,
        init_values=1e-5,
    ),
    # Heo et al.'s axial and mixed RoPE ViTs (vit_*_rope_224, vit_*_rope_mixed_224)
    "rope-axial": dict(
        attn_type="rope", use_fc_norm=False, use_abs_pos_emb=False, use_rot_pos_emb=True, rope_grid_indexing="xy",
        rope_temperature=100.0,
    ),
    "rope-mixed": dict(
        attn_type="rope", use_fc_norm=False, use_abs_pos_emb=False, use_rot_pos_emb=True, rope_grid_indexing="xy",
        rope_temperature=10.0, rope_type="mixed",
    ),
}  # fmt: skip
#: Configs the plain reference covers (no scale-norm inside attention, no gate).
REFERENCE = ("eva-fused-layerscale", "rope-register-avg", "rope-axial", "rope-mixed")


def _model(name: str) -> Eva:
    """A small Eva in float64 with every parameter moved off its initial value (LayerScale, biases, frequencies)."""
    torch.manual_seed(0)
    model = Eva(**SMALL, **CONFIGS[name]).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


def _images(batch=2):
    return torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def _grid_coords(model: Eva) -> torch.Tensor:
    """The patches' coordinates in the model's rotary units, read back from the model's own rotary embedding module
    by the adapter (positions of the first sample, prefix rows dropped)."""
    x = model.norm_pre(model._pos_embed(model.patch_embed(_images(1)))[0])
    return EvaAdapter().token_positions(model, x)[0, model.num_prefix_tokens :]


@pytest.mark.parametrize("name", list(CONFIGS))
def test_r0_equals_the_unpatched_model_and_remove_restores(name):
    model, images = _model(name), _images()
    with torch.no_grad():
        expected = model(images)
        handle = tokenmerge.apply_patch(model, r=0)
        assert isinstance(handle.adapter, EvaAdapter)
        assert torch.equal(model(images), expected)
        assert torch.equal(model.forward_head(model.forward_features(images)), expected)
        handle.remove()
        assert "forward" not in model.__dict__
        assert torch.equal(model(images), expected)


@pytest.mark.parametrize("name", REFERENCE)
@pytest.mark.parametrize("prop_attn", [True, False])
def test_merged_forward_equals_the_rope_reference(name, prop_attn):
    model, images = _model(name), _images()
    schedule = [3, 2]
    with torch.no_grad():
        tokens_ref, size_ref, coords_ref = rope_reference.eva_vit(
            model, images, _grid_coords(model), schedule, prop_attn
        )
        handle = tokenmerge.apply_patch(model, r=schedule, prop_attn=prop_attn, position_rule="mean")
        tokens, state = handle.forward_tokens(images)
    torch.testing.assert_close(tokens, tokens_ref, rtol=0, atol=1e-10)
    torch.testing.assert_close(state.size[..., 0], size_ref, rtol=0, atol=0)
    torch.testing.assert_close(state.positions, coords_ref, rtol=0, atol=1e-12)
    assert tokens.shape[1] == 17 - 5 and torch.all(state.size.sum(1) == 17)


def test_the_position_rule_matters_at_r_above_0():
    """With the default rule ("destination") the output departs from the reference of the "mean" rule: so the
    reference test sees which positions the merged tokens rotate by."""
    model, images = _model("rope-axial"), _images()
    with torch.no_grad():
        tokens_ref, *_ = rope_reference.eva_vit(model, images, _grid_coords(model), [3, 2], True)
        handle = tokenmerge.apply_patch(model, r=[3, 2])
        tokens, _ = handle.forward_tokens(images)
    assert (tokens - tokens_ref).abs().amax() > 1e-4


def test_position_rules_on_a_matching():
    """mean: the size-weighted mean of the members' positions; destination: the B token's own."""
    positions = torch.tensor([[[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]])
    size = torch.tensor([[[1.0], [2.0], [3.0], [1.0]]])
    # A = tokens 0, 2; B = tokens 1, 3. Token 2 merges into token 3; token 0 stays.
    matching = Matching(4, 0, 1, torch.tensor([[[0]]]), torch.tensor([[[1]]]), torch.tensor([[[1]]]))
    mean = merge_positions(matching, positions, size, "mean")
    assert torch.equal(mean, torch.tensor([[[0.0, 0.0], [0.0, 1.0], [1.0, 0.25]]]))
    assert torch.equal(merge_positions(matching, positions, size, "destination"), positions[:, [0, 1, 3]])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_positions_stay_float32_and_exact_in_low_precision(dtype):
    model = Eva(**SMALL, **CONFIGS["rope-axial"]).eval().to(dtype)
    handle = tokenmerge.apply_patch(model, r=[3, 2], trace_source=True, position_rule="mean")
    with torch.no_grad():
        tokens, state = handle.forward_tokens(_images().to(dtype))
    assert state.positions.dtype == torch.float32 and torch.isfinite(tokens).all()
    coords = _grid_coords(Eva(**SMALL, **CONFIGS["rope-axial"]).double()).float()
    source = state.source[:, 1:, 1:].float()  # [B, N', N] patches each merged token holds (prefix dropped)
    expected = source @ coords / source.sum(-1, keepdim=True)
    torch.testing.assert_close(state.positions[:, 1:], expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "name", ["eva02_tiny_patch14_224", "vit_small_patch16_rope_224", "vit_small_patch16_rope_mixed_224"]
)
def test_timm_rope_models_patch_through_apply_patch(name):
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, img_size=56, depth=2, num_classes=3).double().eval()
    images = torch.randn(1, 3, 56, 56, dtype=torch.float64)
    with torch.no_grad():
        expected = model(images)
        handle = tokenmerge.apply_patch(model, r=4)
        tokens, state = handle.forward_tokens(images)
        assert tokens.shape[1] == handle.tokens_per_layer(state.size.sum().int().item())[-1]
        handle.config.r = 0
        torch.testing.assert_close(model(images), expected, rtol=0, atol=1e-12)
        handle.remove()


def test_check_adapter_passes_and_catches_a_dropped_rotation():
    model, images = _model("rope-axial"), _images()
    assert tokenmerge.check_adapter(model, EvaAdapter(), images).ok

    class WithoutRotation(EvaAdapter):
        def rotary(self, model, index):
            return None

    report = tokenmerge.check_adapter(model, WithoutRotation(), images)
    assert not report.ok and report.max_difference > 1e-3


def test_designs_that_do_not_fit_are_refused_with_the_reason():
    post_norm = Eva(**SMALL, use_rot_pos_emb=True, use_post_norm=True)
    with pytest.raises(TypeError, match="norm sits after the attention"):
        tokenmerge.apply_patch(post_norm, r=2)
    attention_pool = Eva(**SMALL, use_rot_pos_emb=True, global_pool="map")
    with pytest.raises(TypeError, match="attention-pooling head"):
        tokenmerge.apply_patch(attention_pool, r=2)
    dinov3 = Eva(**SMALL, use_rot_pos_emb=True, use_abs_pos_emb=False, rope_type="dinov3")
    with pytest.raises(TypeError, match="RotaryEmbeddingDinoV3"):
        tokenmerge.apply_patch(dinov3, r=2)
    with pytest.raises(ValueError, match="position_rule"):
        tokenmerge.apply_patch(_model("rope-axial"), r=2, position_rule="centre")


def test_destination_positions_stay_on_the_grid_and_are_the_default():
    model, images = _model("rope-axial"), _images()
    handle = tokenmerge.apply_patch(model, r=[3, 2], trace_source=True)
    assert handle.config.position_rule == "destination"
    with torch.no_grad():
        _, state = handle.forward_tokens(images)
    grid = _grid_coords(model)
    source = state.source[:, 1:, 1:]  # [B, N', N] patches each merged token holds
    for sample in range(images.shape[0]):
        for token, members in enumerate(source[sample]):
            position = state.positions[sample, 1 + token]
            member_coords = grid[members.bool()]
            assert (member_coords == position).all(-1).any()  # one of its own patches' positions
