"""Hugging Face transformers 5.x models through ``tokenmerge.apply_patch`` (tokenmerge.adapters.hugging_face).

Every supported class, built from a tiny random config in float64: at r = 0 the patched model returns the same output
object as the unpatched one; at r > 0 each block removes r tokens and the sizes sum to the token count;
``check_adapter`` (perturbed weights, so LayerScale and every norm count) reports the adapter exact; ``remove()``
restores. ViT, DeiT, DINOv2 (with registers), CLIP, SigLIP and BERT (padded) equal the paper's algorithm
(tests/core/paper_reference.py) at r > 0, read from the models' own parameters. Refused classes name their reason.
"""

import pytest
import torch
import transformers as hf
from torch import nn

import tokenmerge
from tests.core import paper_reference
from tests.core.test_paper_reference import EXACT, _randomize
from tokenmerge.adapters.hugging_face import FAMILIES, adapter_for

IMAGE = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8)
TEXT = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
DINOV2 = IMAGE | dict(mlp_ratio=2)


def _images(batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(5), dtype=torch.float64)


def _ids(batch: int = 2, length: int = 12) -> torch.Tensor:
    ids = torch.randint(3, 100, (batch, length), generator=torch.Generator().manual_seed(6))
    ids[:, 0] = 2  # a [CLS]-like id, never the padding id
    return ids


#: case -> (model class, config, example input); image classifiers have 3 labels.
CASES = {
    "vit": (hf.ViTModel, hf.ViTConfig(**IMAGE, intermediate_size=64), _images),
    "vit-classifier": (
        hf.ViTForImageClassification,
        hf.ViTConfig(**IMAGE, intermediate_size=64, num_labels=3),
        _images,
    ),
    "deit": (hf.DeiTModel, hf.DeiTConfig(**IMAGE, intermediate_size=64), _images),
    "deit-classifier": (
        hf.DeiTForImageClassification,
        hf.DeiTConfig(**IMAGE, intermediate_size=64, num_labels=3),
        _images,
    ),
    "deit-teacher": (
        hf.DeiTForImageClassificationWithTeacher,
        hf.DeiTConfig(**IMAGE, intermediate_size=64, num_labels=3),
        _images,
    ),
    "dinov2": (hf.Dinov2Model, hf.Dinov2Config(**DINOV2), _images),
    "dinov2-classifier": (hf.Dinov2ForImageClassification, hf.Dinov2Config(**DINOV2, num_labels=3), _images),
    "dinov2-swiglu-drop-path": (
        hf.Dinov2Model,
        hf.Dinov2Config(**DINOV2, use_swiglu_ffn=True, drop_path_rate=0.1),
        _images,
    ),
    "dinov2-registers": (
        hf.Dinov2WithRegistersModel,
        hf.Dinov2WithRegistersConfig(**DINOV2, num_register_tokens=3),
        _images,
    ),
    "dinov2-registers-classifier": (
        hf.Dinov2WithRegistersForImageClassification,
        hf.Dinov2WithRegistersConfig(**DINOV2, num_register_tokens=3, num_labels=3),
        _images,
    ),
    "clip-vision": (hf.CLIPVisionModel, hf.CLIPVisionConfig(**IMAGE, intermediate_size=64), _images),
    "clip-vision-projection": (
        hf.CLIPVisionModelWithProjection,
        hf.CLIPVisionConfig(**IMAGE, intermediate_size=64, projection_dim=16),
        _images,
    ),
    "clip-classifier": (
        hf.CLIPForImageClassification,
        hf.CLIPConfig(vision_config=IMAGE | dict(intermediate_size=64), num_labels=3),
        _images,
    ),
    "siglip-vision-map-head": (hf.SiglipVisionModel, hf.SiglipVisionConfig(**IMAGE, intermediate_size=64), _images),
    "siglip-vision-no-head": (
        hf.SiglipVisionModel,
        hf.SiglipVisionConfig(**IMAGE, intermediate_size=64, vision_use_head=False),
        _images,
    ),
    "siglip-classifier": (
        hf.SiglipForImageClassification,
        hf.SiglipConfig(vision_config=IMAGE | dict(intermediate_size=64), num_labels=3),
        _images,
    ),
    "bert": (hf.BertModel, hf.BertConfig(**TEXT), _ids),
    "bert-classifier": (hf.BertForSequenceClassification, hf.BertConfig(**TEXT, num_labels=3), _ids),
    "roberta": (hf.RobertaModel, hf.RobertaConfig(**TEXT), _ids),
    "roberta-classifier": (hf.RobertaForSequenceClassification, hf.RobertaConfig(**TEXT, num_labels=3), _ids),
    "distilbert": (
        hf.DistilBertModel,
        hf.DistilBertConfig(vocab_size=100, dim=32, n_layers=2, n_heads=2, hidden_dim=64),
        _ids,
    ),
    "distilbert-classifier": (
        hf.DistilBertForSequenceClassification,
        hf.DistilBertConfig(vocab_size=100, dim=32, n_layers=2, n_heads=2, hidden_dim=64, num_labels=3),
        _ids,
    ),
}


def _model(case: str, seed: int = 1) -> tuple[nn.Module, torch.Tensor]:
    """The case's model with random float64 weights (norms, LayerScale, tokens away from their init), in eval mode,
    and its example input."""
    model_class, config, inputs = CASES[case]
    torch.manual_seed(0)
    return _randomize(model_class(config), seed=seed), inputs()


def _assert_same_output(patched, unpatched) -> None:
    """Two Hugging Face outputs: the same class and fields, every tensor equal in float64."""
    assert type(patched) is type(unpatched)
    assert list(patched.keys()) == list(unpatched.keys())
    for key, value in unpatched.items():
        torch.testing.assert_close(patched[key], value, rtol=0, atol=1e-10, msg=key)


@pytest.mark.parametrize("case", sorted(CASES))
def test_r0_returns_the_unpatched_output_and_remove_restores(case):
    model, inputs = _model(case)
    with torch.no_grad():
        expected = model(inputs)
        handle = tokenmerge.apply_patch(model, r=0)
        _assert_same_output(model(inputs), expected)
        handle.remove()
        assert "forward" not in model.__dict__
        _assert_same_output(model(inputs), expected)


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_block_removes_r_tokens_and_sizes_sum_to_the_token_count(case):
    model, inputs = _model(case)
    handle = tokenmerge.apply_patch(model, r=2)
    with torch.no_grad():
        count = handle.adapter.embed(model, inputs).shape[1]
        tokens, state = handle.forward_tokens(inputs)
        output = model(inputs)
    assert handle.schedule(count) == [2, 2]
    assert tokens.shape[:2] == (inputs.shape[0], count - 4)
    torch.testing.assert_close(state.size.sum(1), torch.full((inputs.shape[0], 1), count, dtype=torch.float64))
    assert (state.size[:, : handle.protected] == 1).all()
    if "last_hidden_state" in output:
        torch.testing.assert_close(output.last_hidden_state, tokens, rtol=0, atol=0)
    assert all(torch.isfinite(value).all() for value in output.values())


@pytest.mark.parametrize("case", sorted(CASES))
def test_check_adapter_finds_every_adapter_exact(case):
    model, inputs = _model(case)
    report = tokenmerge.check_adapter(model, adapter_for(model), inputs)
    assert report.ok, str(report)


def test_the_protected_tokens_are_the_class_distillation_and_register_tokens():
    protected = {"vit": 1, "deit": 2, "dinov2": 1, "dinov2-registers": 4, "clip-vision": 1, "siglip-vision-no-head": 0}
    protected |= {"bert": 1, "roberta": 1, "distilbert": 1}
    for case, count in protected.items():
        model, _ = _model(case)
        assert adapter_for(model).protected(model) == count, case


# ---- the paper's algorithm, read from the Hugging Face modules (independent of the adapters' layouts) ----


def _parts(attention, *, out, attn_norm, mlp_norm, mlp, gammas=(None, None)):
    """BlockParts of a pre-norm Hugging Face layer whose attention has q_proj, k_proj and v_proj."""
    q, k, v = attention.q_proj, attention.k_proj, attention.v_proj
    heads = getattr(attention, "num_attention_heads", None) or attention.num_heads
    return paper_reference.BlockParts(
        norm_first=True,
        num_heads=heads,
        attn_norm=attn_norm,
        query_weight=q.weight,
        query_bias=q.bias,
        key_weight=k.weight,
        key_bias=k.bias,
        value_weight=v.weight,
        value_bias=v.bias,
        q_norm=None,
        k_norm=None,
        out_weight=out.weight,
        out_bias=out.bias,
        attn_gamma=gammas[0],
        mlp_norm=mlp_norm,
        mlp=mlp,
        mlp_gamma=gammas[1],
    )


def vit_parts(layer):
    """``ViTLayer`` / ``DeiTLayer``: x + O(A(LN_before(x))), merge, x + MLP(LN_after(x))."""
    a = layer.attention
    return _parts(
        a,
        out=a.o_proj,
        attn_norm=layer.layernorm_before,
        mlp_norm=layer.layernorm_after,
        mlp=layer.mlp,
    )


def dinov2_parts(layer):
    """``Dinov2Layer``: x + lambda1 * O(A(norm1(x))), merge, x + lambda2 * MLP(norm2(x))."""
    a = layer.attention
    gammas = (layer.layer_scale1.lambda1, layer.layer_scale2.lambda1)
    return _parts(a, out=a.o_proj, attn_norm=layer.norm1, mlp_norm=layer.norm2, mlp=layer.mlp, gammas=gammas)


def clip_parts(layer):
    """``CLIPEncoderLayer`` / ``SiglipEncoderLayer``: x + O(A(LN1(x))), merge, x + MLP(LN2(x))."""
    a = layer.self_attn
    return _parts(a, out=a.out_proj, attn_norm=layer.layer_norm1, mlp_norm=layer.layer_norm2, mlp=layer.mlp)


def _linear(x, layer):
    return paper_reference.linear(x, layer.weight, layer.bias)


def _patch_mean(tokens, size, start):
    return torch.stack([paper_reference.size_weighted_mean(t[start:], s[start:]) for t, s in zip(tokens, size)])


def _reference_vit(model, images, schedule):
    """ViTForImageClassification: class token protected, layernorm, classifier on the class token."""
    x = model.vit.embeddings(images)
    blocks = [vit_parts(layer) for layer in model.vit.layers]
    tokens, size = paper_reference.merged_tokens(blocks, x, schedule, protected=1, prop_attn=True)
    tokens = model.vit.layernorm(tokens)
    return tokens, size, _linear(tokens[:, 0], model.classifier)


def _reference_deit_teacher(model, images, schedule):
    """DeiT with teacher: class and distillation tokens protected, the two heads averaged."""
    x = model.deit.embeddings(images)
    blocks = [vit_parts(layer) for layer in model.deit.layers]
    tokens, size = paper_reference.merged_tokens(blocks, x, schedule, protected=2, prop_attn=True)
    tokens = model.deit.layernorm(tokens)
    logits = (_linear(tokens[:, 0], model.cls_classifier) + _linear(tokens[:, 1], model.distillation_classifier)) / 2
    return tokens, size, logits


def _reference_dinov2(tower, classifier, registers):
    def reference(model, images, schedule):
        """DINOv2: class (and register) tokens protected, LayerScale; classifier on [class, size-weighted mean]."""
        base, protected = getattr(model, tower), 1 + registers
        blocks = [dinov2_parts(layer) for layer in base.encoder.layer]
        tokens, size = paper_reference.merged_tokens(
            blocks, base.embeddings(images), schedule, protected=protected, prop_attn=True
        )
        tokens = base.layernorm(tokens)
        features = torch.cat([tokens[:, 0], _patch_mean(tokens, size, protected)], dim=1)
        return tokens, size, _linear(features, getattr(model, classifier))

    return reference


def _reference_clip_projection(model, images, schedule):
    """CLIPVisionModelWithProjection: pre_layrnorm, class token protected, post_layernorm on it, projection."""
    base = model.vision_model
    x = base.pre_layrnorm(base.embeddings(images))
    blocks = [clip_parts(layer) for layer in base.encoder.layers]
    tokens, size = paper_reference.merged_tokens(blocks, x, schedule, protected=1, prop_attn=True)
    return tokens, size, base.post_layernorm(tokens[:, 0]) @ model.visual_projection.weight.T


def _reference_siglip_classifier(model, images, schedule):
    """SiglipForImageClassification: nothing protected, post_layernorm, classifier on the size-weighted mean."""
    base = model.vision_model
    blocks = [clip_parts(layer) for layer in base.encoder.layers]
    tokens, size = paper_reference.merged_tokens(blocks, base.embeddings(images), schedule, protected=0, prop_attn=True)
    tokens = base.post_layernorm(tokens)
    return tokens, size, _linear(_patch_mean(tokens, size, 0), model.classifier)


REFERENCES = {
    "vit-classifier": (_reference_vit, "logits"),
    "deit-teacher": (_reference_deit_teacher, "logits"),
    "dinov2-classifier": (_reference_dinov2("dinov2", "classifier", 0), "logits"),
    "dinov2-registers-classifier": (_reference_dinov2("dinov2_with_registers", "classifier", 3), "logits"),
    "clip-vision-projection": (_reference_clip_projection, "image_embeds"),
    "siglip-classifier": (_reference_siglip_classifier, "logits"),
}


@pytest.mark.parametrize("case", sorted(REFERENCES))
def test_merged_image_models_equal_the_paper(case):
    model, images = _model(case, seed=3)
    reference, field = REFERENCES[case]
    handle = tokenmerge.apply_patch(model, r=[4, 30])
    with torch.no_grad():
        count = handle.adapter.embed(model, images).shape[1]
        tokens, state = handle.forward_tokens(images)
        output = model(images)
        expected = reference(model, images, handle.schedule(count))
    assert tokens.shape[1] == expected[0].shape[1] < count - 4  # the second r clamps to half the mergeable tokens
    torch.testing.assert_close(state.size[..., 0], expected[1], **EXACT)
    torch.testing.assert_close(tokens, expected[0], **EXACT)
    torch.testing.assert_close(output[field], expected[2], **EXACT)


def test_siglip_attention_pooling_counts_a_merged_token_as_its_size_in_copies():
    model, images = _model("siglip-vision-map-head", seed=3)
    handle = tokenmerge.apply_patch(model, r=[4, 3])
    with torch.no_grad():
        output = model(images)
        _, state = handle.forward_tokens(images)
        sizes = state.size[..., 0].round().long()
        copies = torch.stack([t.repeat_interleave(s, dim=0) for t, s in zip(output.last_hidden_state, sizes)])
        expected = type(model.head).forward(model.head, copies)  # the unpatched head on every patch's copy
    assert output.last_hidden_state.shape[1] == 16 - 7 and copies.shape[1] == 16
    torch.testing.assert_close(output.pooler_output, expected, **EXACT)


# ---- text: padded batches, inputs, refusals ----


def _padded(model_case: str, lengths=(12, 7, 9)):
    """Token ids [3, 12] with padding after each length (the model's pad id) and the 0/1 mask."""
    model, _ = _model(model_case, seed=7)
    ids = _ids(len(lengths))
    mask = (torch.arange(12)[None] < torch.tensor(lengths)[:, None]).long()
    return model, torch.where(mask.bool(), ids, model.config.pad_token_id), mask


@pytest.mark.parametrize("case", ["bert", "roberta", "distilbert-classifier"])
def test_a_padded_sequence_pools_as_it_does_alone_at_r0(case):
    model, ids, mask = _padded(case)
    handle = tokenmerge.apply_patch(model, r=0)
    field = "logits" if "classifier" in case else "pooler_output"
    with torch.no_grad():
        padded = model(ids, attention_mask=mask)[field]
        alone = [model(ids[i : i + 1, : int(mask[i].sum())])[field] for i in range(len(ids))]
        handle.remove()
        unpatched = model(ids, attention_mask=mask)[field]
    torch.testing.assert_close(padded, torch.cat(alone), rtol=0, atol=1e-10)
    torch.testing.assert_close(padded, unpatched, rtol=0, atol=1e-10)


def test_padded_bert_equals_the_paper():
    model, ids, mask = _padded("bert")
    handle = tokenmerge.apply_patch(model, r=[3, 30])
    with torch.no_grad():
        tokens, state = handle.forward_tokens(ids, attention_mask=mask)
        output = model(ids, attention_mask=mask)
        blocks = [paper_reference.bert_layer_parts(layer) for layer in model.encoder.layer]
        expected, size = paper_reference.merged_tokens(
            blocks, model.embeddings(input_ids=ids), handle.schedule(12), protected=1, prop_attn=True, mask=mask
        )
    assert tokens.shape[1] == expected.shape[1] == 12 - 3 - 4
    torch.testing.assert_close(state.size[..., 0], size, **EXACT)
    torch.testing.assert_close(state.size.sum(1)[:, 0], mask.sum(1).double())
    real = size > 0  # padding carries no content: only real tokens' features are defined
    torch.testing.assert_close(tokens[real], expected[real], **EXACT)
    torch.testing.assert_close(output.pooler_output, torch.tanh(_linear(expected[:, 0], model.pooler.dense)), **EXACT)


def test_text_models_take_a_dict_of_embedding_inputs_and_input_ids():
    model, ids = _model("bert-classifier")
    types = (torch.arange(12) >= 6).long().expand(2, -1)
    with torch.no_grad():
        expected = model(ids, token_type_ids=types).logits
        tokenmerge.apply_patch(model, r=0)
        torch.testing.assert_close(model({"input_ids": ids, "token_type_ids": types}).logits, expected)
        torch.testing.assert_close(model(input_ids=ids).logits, model(ids).logits)
        with pytest.raises(ValueError, match="Pass attention_mask beside the input"):
            model({"input_ids": ids, "attention_mask": torch.ones_like(ids)})


@pytest.mark.parametrize(
    "model, phrase",
    [
        (
            lambda: hf.CLIPTextModel(hf.CLIPTextConfig(**TEXT, bos_token_id=0, eos_token_id=2)),
            "CLIPTextModel cannot merge tokens: the block's attention is causal",
        ),
        (
            lambda: hf.CLIPTextModelWithProjection(hf.CLIPTextConfig(**TEXT, bos_token_id=0, eos_token_id=2)),
            "attention is causal",
        ),
        (lambda: hf.SiglipTextModel(hf.SiglipTextConfig(**TEXT)), "it pools its last token"),
        (
            lambda: hf.BertModel(hf.BertConfig(**TEXT, is_decoder=True)),
            "BertLayer\\) cannot merge tokens: is_decoder found: the block's attention is causal",
        ),
        (
            lambda: hf.ViTForMaskedImageModeling(hf.ViTConfig(**IMAGE, intermediate_size=64)),
            "no built-in adapter for the Hugging Face model ViTForMaskedImageModeling.*Add merging to your own model",
        ),
    ],
    ids=["clip-text", "clip-text-projection", "siglip-text", "bert-decoder", "vit-masked-image-modeling"],
)
def test_unsupported_classes_are_refused_with_the_reason(model, phrase):
    with pytest.raises(TypeError, match=phrase):
        tokenmerge.apply_patch(model(), r=2)


def test_supported_families_lists_the_hugging_face_families():
    assert set(FAMILIES) <= set(tokenmerge.supported_families())
    assert any("Dinov2WithRegistersModel" in name for name in FAMILIES)


def test_training_with_a_float_attention_dropout_is_refused():
    model = hf.ViTModel(hf.ViTConfig(**IMAGE, intermediate_size=64, attention_probs_dropout_prob=0.1)).train()
    tokenmerge.apply_patch(model, r=2)
    with pytest.raises(ValueError, match="drops attention probabilities while training"):
        model(_images().float())
    model.eval()
    assert model(_images().float()).last_hidden_state.shape[1] == 17 - 4


def test_the_patched_forward_takes_the_keywords_hugging_face_callers_pass():
    """model(pixel_values=...), model(**tokenizer_output) with token_type_ids and attention_mask, return_dict=False."""
    vit, images = _model("vit-classifier")
    bert, ids = _model("bert-classifier")
    types, mask = (torch.arange(12) >= 6).long().expand(2, -1), torch.ones(2, 12, dtype=torch.long)
    mask[1, 9:] = 0
    with torch.no_grad():
        expected_vit = vit(pixel_values=images)
        expected_bert = bert(input_ids=ids, token_type_ids=types, attention_mask=mask)
        tokenmerge.apply_patch(vit, r=0)
        tokenmerge.apply_patch(bert, r=0)
        _assert_same_output(vit(pixel_values=images), expected_vit)
        _assert_same_output(bert(**{"input_ids": ids, "token_type_ids": types, "attention_mask": mask}), expected_bert)
        as_tuple = vit(pixel_values=images, return_dict=False)
        assert isinstance(as_tuple, tuple)
        torch.testing.assert_close(as_tuple[0], expected_vit.logits, rtol=0, atol=1e-10)
        with pytest.raises(ValueError, match="token_type_ids"):
            vit(images, token_type_ids=types)  # an image model takes no such input: refused, naming what it takes
