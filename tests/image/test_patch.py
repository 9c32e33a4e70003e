"""The timm ViT adapter on tiny random-weight models of each supported family."""

import pickle

import pytest
import torch
from timm.models.deit import VisionTransformerDistilled
from timm.models.vision_transformer import VisionTransformer

from tokenmerge.core import unmerge_with_source
from tokenmerge.image import apply_patch, merged_source

TINY = dict(img_size=32, patch_size=4, embed_dim=32, depth=3, num_heads=2, num_classes=7)
FAMILIES = {
    "class_token": lambda: VisionTransformer(**TINY),
    "avg_pool": lambda: VisionTransformer(**TINY, class_token=False, global_pool="avg"),
    "distilled": lambda: VisionTransformerDistilled(**TINY),
    "registers": lambda: VisionTransformer(**TINY, reg_tokens=4),
    "layerscale_qknorm": lambda: VisionTransformer(**TINY, init_values=0.5, qk_norm=True),
    "registers_avg_layerscale": lambda: VisionTransformer(
        **TINY, class_token=False, reg_tokens=2, global_pool="avg", init_values=0.3
    ),
}


def _model(name):
    torch.manual_seed(0)
    return FAMILIES[name]().eval()


def _images(batch=3):
    return torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", FAMILIES)
def test_r0_equals_unpatched_and_remove_restores(name):
    model, x = _model(name), _images()
    expected = model(x)
    handle = apply_patch(model, r=0)
    torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-6)
    handle.config.r = 6
    assert not torch.allclose(model(x), expected)
    handle.remove()
    assert torch.equal(model(x), expected)
    assert "forward" not in model.__dict__ and "forward_features" not in model.__dict__


@pytest.mark.parametrize("name", FAMILIES)
def test_token_count_per_layer_and_sizes(name):
    model, x = _model(name), _images()
    handle = apply_patch(model, r=10)
    seen = []
    hooks = [b.mlp.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[1])) for b in model.blocks]
    tokens, state = handle.forward_tokens(x)
    for h in hooks:
        h.remove()
    n = 64 + model.num_prefix_tokens
    expected = handle.tokens_per_layer(n)
    assert seen == expected[1:] and tokens.shape[1] == expected[-1]
    assert all(a - b == min(10, (a - model.num_prefix_tokens) // 2) for a, b in zip(expected, expected[1:]))
    torch.testing.assert_close(state.size.sum(1), torch.full((3, 1), float(n)))
    assert torch.equal(state.size[:, : model.num_prefix_tokens], torch.ones(3, model.num_prefix_tokens, 1))


@pytest.mark.parametrize("pool", ["avg", "max", "avgmax"])
def test_pooling_over_merged_tokens_equals_pooling_over_unmerged_patches(pool):
    torch.manual_seed(0)
    model, x = VisionTransformer(**TINY, class_token=False, global_pool=pool).eval(), _images()
    handle = apply_patch(model, r=8)
    tokens, state = handle.forward_tokens(x, trace_source=True)
    full = unmerge_with_source(tokens, state.source)  # every input patch gets its token's features
    pooled = {"avg": full.mean(1), "max": full.amax(1), "avgmax": 0.5 * (full.mean(1) + full.amax(1))}[pool]
    torch.testing.assert_close(model(x), model.head(model.fc_norm(pooled)), rtol=1e-5, atol=1e-5)


def test_apply_twice_keeps_class_state_dict_and_pickles():
    model, x = _model("class_token"), _images()
    keys = list(model.state_dict())
    first = apply_patch(model, r=4)
    second = apply_patch(model, r=8)
    assert not first.active and second.active and type(model) is VisionTransformer
    assert list(model.state_dict()) == keys
    out = model(x)
    first.remove()  # stale handle: no effect
    assert torch.equal(model(x), out)
    clone = pickle.loads(pickle.dumps(model))
    torch.testing.assert_close(clone(x), out)
    second.remove()
    assert "forward" not in model.__dict__


def test_schedule_can_change_between_forwards():
    model, x = _model("class_token"), _images()
    handle = apply_patch(model, r=0)
    outs = []
    for spec in (0, 4, [8, 0, 2], (4, -1.0), 0.25):
        handle.config.r = spec
        tokens, _ = handle.forward_tokens(x)
        outs.append(tokens.shape[1])
    assert outs == [65, 65 - 12, 65 - 10, 65 - 8 - 4 - 0, handle.tokens_per_layer(65)[-1]]


def test_random_baselines_remove_r_tokens_per_block_and_keep_sizes_honest():
    # ToMe's values and proportional attention at r > 0 are checked against the paper (test_paper_reference.py).
    model, x = _model("class_token"), _images()
    handle = apply_patch(model, r=8, method="random_merge", seed=0)
    tokens, state = handle.forward_tokens(x)
    assert tokens.shape[1] == 65 - 3 * 8 and torch.equal(state.size.sum(1), torch.full((3, 1), 65.0))
    assert state.size[:, 0].eq(1).all()  # the class token never merges
    handle.config.method = "random_drop"
    tokens, state = handle.forward_tokens(x)
    assert tokens.shape[1] == 65 - 3 * 8 and state.size.eq(1).all()  # dropped tokens take their size with them
    assert model(x).shape == (3, 7)


def test_train_mode_gradients_and_inference_mode():
    model, x = _model("layerscale_qknorm"), _images()
    apply_patch(model, r=8)
    model.train()
    model(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    model.eval()
    with torch.inference_mode():
        assert model(x).shape == (3, 7)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision(dtype):
    model, x = _model("registers"), _images()
    expected = model(x)
    model = model.to(dtype)
    apply_patch(model, r=4)
    with torch.inference_mode():
        out = model(x.to(dtype))
    assert out.dtype == dtype and torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), expected, atol=0.15, rtol=0.1)


def test_source_map_partitions_the_input():
    model, x = _model("registers"), _images(2)
    handle = apply_patch(model, r=10)
    source = merged_source(handle, x)
    assert source.shape[2] == 64 + 5 and torch.equal(source.sum(1), torch.ones(2, 69))
    assert handle.config.trace_source is False


def test_unsupported_models_get_clear_errors():
    from timm.models.swin_transformer import SwinTransformer

    swin = SwinTransformer(img_size=32, patch_size=4, window_size=4, embed_dim=16, depths=(1,), num_heads=(1,))
    with pytest.raises(TypeError, match="SwinTransformer lacks"):
        apply_patch(swin, r=4)
    map_vit = VisionTransformer(**TINY, class_token=False, global_pool="map")
    with pytest.raises(TypeError, match="attention-pooling"):
        apply_patch(map_vit, r=4)
    with pytest.raises(ValueError, match="Unknown method"):
        apply_patch(_model("class_token"), r=4, method="kmeans")
    with pytest.raises(ValueError, match="Unknown attention kernel"):
        apply_patch(_model("class_token"), r=4, attention="flash")


@pytest.mark.parametrize("prop_attn", [True, False])
def test_folded_attention_gives_the_masks_output(prop_attn):
    model, x = _model("registers_avg_layerscale"), _images()
    handle = apply_patch(model, r=8, prop_attn=prop_attn)
    expected = model(x)
    handle.config.attention = "folded"
    torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-5)


def test_bad_r_fails_at_apply_patch_not_at_the_first_forward():
    model = _model("class_token")
    for r, message in ((-1, ">= 0"), (0.6, r"ratio .*\[0, 0.5\]"), ([4, 4], "one r per layer \\(3\\)"), ("8", "int")):
        with pytest.raises((TypeError, ValueError), match=message):
            apply_patch(model, r=r)
        assert "forward" not in model.__dict__  # nothing was installed
    handle = apply_patch(model, r=4)
    with pytest.raises(ValueError, match=">= 0"):
        handle.config.r = -3
    assert handle.config.r == 4 and handle.active


def test_patched_model_compiles_to_one_graph():
    # No data-dependent Python control flow or .item() in the hot path: dynamo captures one graph.
    model, x = _model("class_token"), _images(2)
    apply_patch(model, r=8)
    expected = model(x)
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(x), expected)


@pytest.mark.parametrize("name", ["avg_pool", "registers_avg_layerscale", "class_token"])
def test_timms_two_step_call_equals_the_patched_forward(name):
    # timm users and timm's own tools call forward_head(forward_features(x)); after a merge the head must pool by size.
    model, x = _model(name), _images()
    handle = apply_patch(model, r=8)
    features = model.forward_features(x)
    assert features.shape[1] == handle.tokens_per_layer(65 + handle.protected - 1)[-1] < 64
    torch.testing.assert_close(model.forward_head(features), model(x), rtol=0, atol=0)
    pooled = model.forward_head(features, pre_logits=True)
    torch.testing.assert_close(model.head(pooled), model(x), rtol=1e-6, atol=1e-6)


def test_forward_head_refuses_tokens_without_sizes_and_unmerged_paths_refuse():
    model, x = _model("avg_pool"), _images()
    handle = apply_patch(model, r=8)
    with pytest.raises(ValueError, match="without their merge sizes"):
        model.forward_head(model.forward_features(x) * 1.0)  # a new tensor: the sizes are gone
    for name in ("forward_intermediates", "get_intermediate_layers"):
        with pytest.raises(RuntimeError, match=f"model.{name} runs the transformer blocks without Token Merging"):
            getattr(model, name)(x)
    handle.config.r = 0  # nothing merges: plain tokens pool as they are
    torch.testing.assert_close(model.forward_head(model.forward_features(x) * 1.0), model(x))
    handle.remove()
    assert not {"forward_head", "forward_intermediates", "get_intermediate_layers"} & set(model.__dict__)
    assert len(model.forward_intermediates(x, intermediates_only=True)) == 3  # timm's own method is back


@pytest.mark.parametrize("method", ["random_merge", "random_drop"])
def test_seeded_random_baselines_draw_per_sample(method):
    # A sample's draws do not depend on its batch (or process): the numbers of a sweep do not depend on sharding.
    model, x = _model("class_token"), _images(4)
    handle = apply_patch(model, r=8, method=method, seed=3)
    batched = model(x)
    torch.testing.assert_close(torch.cat([model(x[i : i + 1]) for i in range(4)]), batched, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model(x.flip(0)), batched.flip(0), rtol=1e-5, atol=1e-5)
    handle.config.seed = 4
    assert (model(x) - batched).abs().amax() > 1e-3  # another seed draws other tokens
    torch.manual_seed(0)  # the global generator plays no part
    handle.config.seed = 3
    torch.testing.assert_close(model(x), batched)


def test_rotary_position_vits_patch_with_their_positions_and_a_plain_layout_is_refused():
    import timm

    from tokenmerge.core import BlockLayout, check_block

    eva = timm.create_model("vit_small_patch16_rope_224", pretrained=False, img_size=32, patch_size=8, depth=1)
    assert type(apply_patch(eva, r=2).adapter).__name__ == "EvaAdapter"  # positions carried (tests/adapters)
    # A user's own layout over EVA's block (which takes the rotation as an argument), without the positions the
    # rotation needs, is refused with the reason.
    own_layout = BlockLayout(
        norm_first=True,
        attn_norm="norm1",
        mlp_norm="norm2",
        num_heads="attn.num_heads",
        qkv="attn.qkv",
        attn_out=("attn.proj",),
        mlp=("mlp",),
    )
    with pytest.raises(TypeError, match=r"rotary position embeddings .* token_positions and rotary"):
        check_block(eva.blocks[0], "blocks[0]", own_layout)
