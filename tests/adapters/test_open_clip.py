"""Merging in open_clip's image towers (OpenCLIP and OpenAI CLIP architectures), tiny and random, built offline.

Each tower config equals its unpatched tower at r = 0 and the paper's algorithm (tests/core/paper_reference.py) in
float64 at r > 0; whole CLIP models, text towers, attentional poolers, custom blocks and timm trunks are refused with
what to do instead.
"""

import dataclasses

import pytest

open_clip = pytest.importorskip("open_clip")

import torch  # noqa: E402
from open_clip.modified_resnet import ModifiedResNet  # noqa: E402
from open_clip.timm_model import TimmModel  # noqa: E402
from open_clip.transformer import TextTransformer, VisionTransformer  # noqa: E402

import tokenmerge  # noqa: E402
from tests.core import paper_reference  # noqa: E402
from tests.core.test_paper_reference import EXACT, _randomize  # noqa: E402
from tokenmerge.adapters.open_clip import OpenCLIPVisionAdapter, adapter_for  # noqa: E402

#: 32x32 images in patches of 8: 16 patches and the class token.
TOKENS = 17
CONFIGS = {
    "class token": {},
    "LayerScale": dict(ls_init_value=1e-5),
    "avg pool, ln after pool, no ln_pre (CLIPA)": dict(pool_type="avg", final_ln_after_pool=True, no_ln_pre=True),
    "avg pool, output tokens": dict(pool_type="avg", output_tokens=True),
}


def _tower(**kwargs) -> VisionTransformer:
    """A 2-block, width-32, 4-head tower on 32x32 images with random float64 weights, in eval mode."""
    torch.manual_seed(0)
    tower = VisionTransformer(
        image_size=32, patch_size=8, width=32, layers=2, heads=4, mlp_ratio=2.0, output_dim=16, **kwargs
    )
    return _randomize(tower, seed=1)


def _images(batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(2), dtype=torch.float64)


def _block_parts(block) -> paper_reference.BlockParts:
    """A ``ResidualAttentionBlock`` for the reference: its nn.MultiheadAttention, norms, MLP and LayerScale gammas."""
    parts = paper_reference.multihead_attention_parts(
        block.attn, norm_first=True, attn_norm=block.ln_1, mlp_norm=block.ln_2, mlp=block.mlp
    )
    return dataclasses.replace(
        parts, attn_gamma=getattr(block.ls_1, "gamma", None), mlp_gamma=getattr(block.ls_2, "gamma", None)
    )


@torch.no_grad()
def _reference(tower, images, schedule, prop_attn):
    """(tokens [B, N', C] as forward_tokens gives them, size [B, N'], image features [B, D]) from the paper's
    algorithm on the tower's own embedding, then the tower's pooling as open_clip writes it."""
    x = tower._embeds(images)
    blocks = [_block_parts(block) for block in tower.transformer.resblocks]
    tokens, size = paper_reference.merged_tokens(blocks, x, schedule, protected=1, prop_attn=prop_attn)
    if not tower.final_ln_after_pool:
        tokens = tower.ln_post(tokens)
    if tower.pool_type == "avg":
        pooled = torch.stack([paper_reference.size_weighted_mean(t[1:], s[1:]) for t, s in zip(tokens, size)])
    else:
        pooled = tokens[:, 0]
    if tower.final_ln_after_pool:
        pooled = tower.ln_post(pooled)
    return tokens, size, pooled @ tower.proj


def _outputs(output) -> tuple:
    """A tower's output as a tuple: (features,), or (features, tokens) with output_tokens."""
    return output if isinstance(output, tuple) else (output,)


@pytest.mark.parametrize("config", CONFIGS)
@torch.no_grad()
def test_r0_equals_the_unpatched_tower_and_remove_restores(config):
    tower, images = _tower(**CONFIGS[config]), _images()
    expected = tower(images)
    handle = tokenmerge.apply_patch(tower, r=0)
    assert isinstance(handle.adapter, OpenCLIPVisionAdapter)
    patched = tower(images)
    assert type(patched) is type(expected)
    for got, want in zip(_outputs(patched), _outputs(expected), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-10)
    handle.config.r = 4
    merged = tower(images)
    assert _outputs(merged)[0].shape == _outputs(expected)[0].shape == (2, 16)
    handle.remove()
    restored = tower(images)
    assert all(torch.equal(a, b) for a, b in zip(_outputs(restored), _outputs(expected), strict=True))


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("prop_attn", [True, False])
@torch.no_grad()
def test_merged_tower_equals_the_paper(config, prop_attn):
    tower, images = _tower(**CONFIGS[config]), _images()
    handle = tokenmerge.apply_patch(tower, r=4, prop_attn=prop_attn)
    tokens, state = handle.forward_tokens(images)
    assert handle.tokens_per_layer(TOKENS) == [17, 13, 9]
    assert tokens.shape == (2, 9, 32)
    assert torch.equal(state.size.sum(1), torch.full((2, 1), float(TOKENS), dtype=state.size.dtype))
    ref_tokens, ref_size, ref_features = _reference(tower, images, handle.schedule(TOKENS), prop_attn)
    torch.testing.assert_close(tokens, ref_tokens, **EXACT)
    torch.testing.assert_close(state.size[..., 0], ref_size, **EXACT)
    output = tower(images)
    torch.testing.assert_close(_outputs(output)[0], ref_features, **EXACT)
    if tower.output_tokens:  # the merged patch tokens, the class token left out
        torch.testing.assert_close(output[1], ref_tokens[:, 1:], **EXACT)


@torch.no_grad()
def test_patch_dropout_drops_patches_before_the_blocks_merge_in_training():
    tower, images = _tower(patch_dropout=0.5).train(), _images()
    torch.manual_seed(5)
    expected = tower(images)
    handle = tokenmerge.apply_patch(tower, r=0)
    torch.manual_seed(5)
    torch.testing.assert_close(tower(images), expected, rtol=0, atol=1e-10)
    handle.config.r = 2
    tokens, state = handle.forward_tokens(images)
    kept = 1 + TOKENS // 2  # the class token and half of the 16 patches
    assert tokens.shape[1] == kept - 2 * 2
    assert torch.equal(state.size.sum(1), torch.full((2, 1), float(kept), dtype=state.size.dtype))


@pytest.mark.parametrize("config", CONFIGS)
def test_check_adapter_finds_the_adapter_exact(config):
    tower = _tower(**CONFIGS[config])
    report = tokenmerge.check_adapter(tower, adapter_for(tower), _images())
    assert report.ok, str(report)


@torch.no_grad()
def test_a_clip_model_merges_through_its_visual_tower_and_is_refused_whole():
    torch.manual_seed(0)
    vision = dict(image_size=32, patch_size=8, width=32, layers=2, head_width=8, mlp_ratio=2.0)
    text = dict(context_length=8, vocab_size=50, width=32, heads=4, layers=2)
    clip = open_clip.CLIP(embed_dim=16, vision_cfg=vision, text_cfg=text).double().eval()
    images, texts = _images(), torch.randint(0, 50, (2, 8), generator=torch.Generator().manual_seed(3))
    expected_images, expected_texts = clip.encode_image(images), clip.encode_text(texts)
    with pytest.raises(TypeError, match=r"pass the image tower, tokenmerge.apply_patch\(model.visual"):
        tokenmerge.apply_patch(clip, r=4)
    handle = tokenmerge.apply_patch(clip.visual, r=0)
    torch.testing.assert_close(clip.encode_image(images), expected_images, rtol=0, atol=1e-10)
    handle.config.r = 4
    image_features, text_features, _ = clip(images, texts)
    torch.testing.assert_close(image_features, torch.nn.functional.normalize(clip.visual(images), dim=-1))
    assert not torch.allclose(clip.encode_image(images), expected_images)
    assert torch.equal(clip.encode_text(texts), expected_texts)


def test_text_towers_are_refused_with_the_reason():
    causal = TextTransformer(context_length=8, vocab_size=50, width=32, heads=4, layers=2, output_dim=16)
    with pytest.raises(TypeError, match="TextTransformer .* attn_mask .* found: the block's attention is causal"):
        tokenmerge.apply_patch(causal, r=2)
    bidirectional = TextTransformer(
        context_length=8, vocab_size=50, width=32, heads=4, layers=2, output_dim=16, no_causal_mask=True
    )
    with pytest.raises(TypeError, match="pools the text at one token chosen by its position"):
        tokenmerge.apply_patch(bidirectional, r=2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(attentional_pool=True, attn_pooler_queries=4, attn_pooler_heads=2), "attentional pooler"),
        (dict(pool_type="none"), "pool_type='none' is not supported: it returns every token"),
        (dict(qk_norm=True), r"CustomResidualAttentionBlock\) is not open_clip's default ResidualAttentionBlock"),
    ],
)
def test_towers_merging_cannot_drive_are_refused(kwargs, message):
    with pytest.raises(TypeError, match=message):
        tokenmerge.apply_patch(_tower(**kwargs), r=2)


@torch.no_grad()
def test_a_timm_trunk_is_refused_with_the_trunk_to_patch_and_other_classes_by_name():
    visual = TimmModel("vit_tiny_patch16_224", embed_dim=16).eval()
    images = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(4))
    expected = visual(images)
    with pytest.raises(TypeError, match=r"tokenmerge.apply_patch\(model.visual.trunk"):
        tokenmerge.apply_patch(visual, r=8)
    handle = tokenmerge.apply_patch(visual.trunk, r=0)  # timm's own adapter
    torch.testing.assert_close(visual(images), expected, rtol=1e-5, atol=1e-6)
    handle.config.r = 8
    assert visual(images).shape == expected.shape
    resnet = ModifiedResNet(layers=[1, 1, 1, 1], output_dim=16, heads=2, image_size=64, width=16)
    with pytest.raises(TypeError, match="does not know open_clip's open_clip.modified_resnet.ModifiedResNet"):
        tokenmerge.apply_patch(resnet, r=2)
