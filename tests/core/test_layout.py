"""The adapter API on a model family that is not built in: a post-norm Hugging Face BERT with padded batches."""

import dataclasses

import pytest
import torch

from tokenmerge.core import TIMM_BLOCK, BlockLayout, ModelAdapter, patch_model

from .bert_layout import BERT_LAYER, BertMeanPooled, reference_embedding, tiny_bert

pytest.importorskip("transformers")


def _padded_batch(lengths=(12, 7, 3), width=12, seed=0):
    """Token ids [B, width] with a class token first and padding (id 0) after each length, and the mask."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 100, (len(lengths), width), generator=g)
    ids[:, 0] = 1
    mask = (torch.arange(width)[None] < torch.tensor(lengths)[:, None]).long()
    return ids * mask, mask


@torch.no_grad()
def test_r0_with_padding_matches_the_unpatched_model():
    model = tiny_bert()
    ids, mask = _padded_batch()
    expected = reference_embedding(model, ids, mask)
    handle = patch_model(model, BertMeanPooled(), r=0)
    torch.testing.assert_close(model(ids, attention_mask=mask), expected, atol=1e-5, rtol=1e-5)
    handle.remove()
    torch.testing.assert_close(reference_embedding(model, ids, mask), expected)


@pytest.mark.parametrize("method", ["tome", "random_merge", "random_drop"])
@torch.no_grad()
def test_padding_content_never_reaches_real_tokens(method):
    model = tiny_bert()
    ids, mask = _padded_batch()
    patch_model(model, BertMeanPooled(), r=2, method=method)
    noisy = torch.where(mask.bool(), ids, torch.randint(5, 100, ids.shape))
    torch.manual_seed(1)
    clean_out = model(ids, attention_mask=mask)
    torch.manual_seed(1)
    noisy_out = model(noisy, attention_mask=mask)
    torch.testing.assert_close(noisy_out, clean_out, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_padding_merges_only_with_padding_and_sizes_count_real_tokens():
    model = tiny_bert()
    ids, mask = _padded_batch(lengths=(12, 8, 6))
    handle = patch_model(model, BertMeanPooled(), r=2, trace_source=True)
    tokens, state = handle.forward_tokens(ids, attention_mask=mask)
    assert tokens.shape[1] == 12 - 3 * 2
    real = mask.bool()
    holds_real = (state.source * real[:, None].float()).sum(-1) > 0  # [B, N']
    holds_padding = (state.source * (~real)[:, None].float()).sum(-1) > 0
    assert not (holds_real & holds_padding).any()
    torch.testing.assert_close(state.size[..., 0].sum(1), real.sum(1).float())
    assert torch.equal(state.size[..., 0] == 0, holds_padding)


@torch.no_grad()
def test_without_proportional_attention_padding_is_still_masked():
    model = tiny_bert()
    ids, mask = _padded_batch()
    expected = reference_embedding(model, ids, mask)
    patch_model(model, BertMeanPooled(), r=0, prop_attn=False)
    torch.testing.assert_close(model(ids, attention_mask=mask), expected, atol=1e-5, rtol=1e-5)


def test_handle_features_work_on_the_new_family():
    model = tiny_bert()
    ids, mask = _padded_batch()
    handle = patch_model(model, BertMeanPooled(), r=[3, 2, 1])
    assert handle.tokens_per_layer(12) == [12, 9, 7, 6]
    assert model(ids, attention_mask=mask).shape == (3, 64)
    handle.config.r = 1
    assert model(ids, attention_mask=mask).shape == (3, 64)
    with pytest.raises(ValueError, match="attention_mask must have shape"):
        model(ids, attention_mask=mask[:, :5])
    with pytest.raises(ValueError, match="takes the model input, attention_mask and return_dict only"):
        model(ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids))
    handle.remove()
    assert "forward" not in model.__dict__


def test_a_layout_that_does_not_fit_names_the_missing_pieces():
    class TimmLayoutOnBert(BertMeanPooled):
        layout = TIMM_BLOCK

    with pytest.raises(TypeError, match=r"missing: attn_norm='norm1'.*BlockLayout"):
        patch_model(tiny_bert(), TimmLayoutOnBert())


def test_block_layout_checks_itself():
    with pytest.raises(ValueError, match="exactly one of qkv .*, all of query, key and value, or multihead"):
        BlockLayout(norm_first=True, attn_norm="n", mlp_norm="m", num_heads=2, attn_out=("o",), mlp=("f",))
    with pytest.raises(ValueError, match="exactly one of qkv"):
        BlockLayout(
            norm_first=True, attn_norm="n", mlp_norm="m", num_heads=2, attn_out=("o",), mlp=("f",), qkv="a", query="q"
        )
    with pytest.raises(TypeError, match=r"tuple of paths; write \('mlp',\)"):
        BlockLayout(norm_first=True, attn_norm="n", mlp_norm="m", num_heads=2, attn_out=("o",), mlp="mlp", qkv="a")


class _BlocksAt(ModelAdapter):
    """An adapter that only says where the blocks are (the rest is never reached: the check fails first)."""

    def __init__(self, blocks):
        self._blocks = blocks

    def blocks(self, model):
        return self._blocks


@pytest.mark.parametrize(
    "build, words",
    [
        (
            lambda: _timm_block(
                "swin_transformer",
                "SwinTransformerBlock",
                dim=32,
                input_resolution=(8, 8),
                num_heads=2,
                window_size=4,
                shift_size=2,
            ),
            "window",
        ),
        (lambda: _timm_block("beit", "Block", dim=32, num_heads=2, window_size=(4, 4)), "relative position bias"),
        (lambda: tiny_bert(is_decoder=True, add_cross_attention=True).encoder.layer[0], "cross-attention"),
        (lambda: tiny_bert(is_decoder=True).encoder.layer[0], "causal"),
        (lambda: _timm_model("vit_relpos_small_patch16_224").blocks[0], "relative position bias"),
        (lambda: _timm_model("vit_srelpos_small_patch16_224").blocks[0], r"forward\(shared_rel_pos=...\)"),
    ],
    ids=["swin", "beit", "bert-cross-attention", "bert-causal", "timm-relpos", "timm-shared-relpos"],
)
def test_unsupported_designs_get_the_reason(build, words):
    block = build()
    with pytest.raises(TypeError, match=words):
        patch_model(torch.nn.Sequential(block), _BlocksAt([block]))


def _timm_model(name: str):
    import timm

    return timm.create_model(name, pretrained=False, depth=1)


def test_a_position_bias_shared_by_all_blocks_is_refused_at_the_model():
    model = _timm_model("vit_srelpos_small_patch16_224")
    with pytest.raises(TypeError, match="VisionTransformerRelPos cannot merge tokens: shared_rel_pos found"):
        patch_model(model, _BlocksAt(model.blocks))


def test_masks_other_than_zero_one_or_without_real_tokens_are_refused():
    model = tiny_bert()
    ids, mask = _padded_batch()
    patch_model(model, BertMeanPooled(), r=1)
    additive = (1 - mask).float() * -1e4
    with pytest.raises(ValueError, match="1 .or True. for real tokens and 0 for padding"):
        model(ids, attention_mask=additive)
    empty = mask.clone()
    empty[1] = 0
    with pytest.raises(ValueError, match="a row without any real token"):
        model(ids, attention_mask=empty)
    torch.testing.assert_close(model(input_ids=ids, attention_mask=mask), model(ids, attention_mask=mask.bool()))


def test_layout_typos_and_head_counts_are_caught_at_patch_time():
    class Typo(BertMeanPooled):
        layout = dataclasses.replace(BERT_LAYER, attn_dropout="attention.drop")

    with pytest.raises(TypeError, match=r"missing: attn_dropout='attention.drop'"):
        patch_model(tiny_bert(), Typo())

    class ThreeHeads(BertMeanPooled):
        layout = dataclasses.replace(BERT_LAYER, num_heads=3)

    with pytest.raises(TypeError, match="3 heads do not divide the projection's 64 output features"):
        patch_model(tiny_bert(), ThreeHeads())
    with pytest.raises(TypeError, match="norm_first is True"):
        dataclasses.replace(BERT_LAYER, norm_first="False")


def _timm_block(module: str, name: str, **kwargs):
    import importlib

    return getattr(importlib.import_module(f"timm.models.{module}"), name)(**kwargs)
