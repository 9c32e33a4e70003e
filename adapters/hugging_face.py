"""Token Merging for Hugging Face transformers 5.x models, found from the model's class by ``tokenmerge.apply_patch``.

``tokenmerge.apply_patch(model, r=8)`` calls :func:`adapter_for` for a model whose class comes from
``transformers``; :data:`FAMILIES` names what is built in. Inputs: image models take ``pixel_values`` [B, 3, H, W]
(``model(pixel_values)`` or ``model(pixel_values=...)``); text models take token ids [B, N] (``model(ids)``,
``model(input_ids=ids)`` or ``model(**tokenizer(texts, padding=True, return_tensors="pt"))``: BERT's
``token_type_ids`` reach its embeddings) or a dict of their embeddings' inputs, with ``attention_mask=`` [B, N] for
a padded batch. ``return_dict=False`` returns the output object's ``to_tuple()``.

Outputs: the patched forward returns the library's own output object for the class, computed on the merged tokens:

* base models: ``BaseModelOutputWithPooling`` (ViT, DeiT, DINOv2, CLIP and SigLIP vision),
  ``BaseModelOutputWithPoolingAndCrossAttentions`` (BERT, RoBERTa) or ``BaseModelOutput`` (DistilBERT), with
  ``last_hidden_state`` [B, N', C] holding the merged tokens (N' < N once r > 0; their sizes come with
  ``tokens, state = handle.forward_tokens(inputs)``, ``state.size`` [B, N', 1]) and ``pooler_output`` [B, C] as the
  model pools (class token, or SigLIP's attention-pooling head with log(size) added);
* ``CLIPVisionModelWithProjection``: ``CLIPVisionModelOutput`` (``image_embeds``, ``last_hidden_state``);
* image classifiers: ``ImageClassifierOutput`` (DeiT's teacher model: ``DeiTForImageClassificationWithTeacherOutput``)
  and text classifiers ``SequenceClassifierOutput``, so ``model(x).logits`` keeps working; heads that average tokens
  average them weighted by size. Losses, hidden states and attentions are not computed: the patched forward refuses
  ``labels=`` and ``output_*=True``.

Refused: CLIP's text towers (causal attention) and SigLIP's text tower (it pools its last token, which merging would
average away; only leading tokens can be protected), each with the reason; any other class with what is built in and
how to write an adapter.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from transformers import (
    BertForSequenceClassification,
    BertModel,
    CLIPForImageClassification,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPVisionModel,
    CLIPVisionModelWithProjection,
    DeiTForImageClassification,
    DeiTForImageClassificationWithTeacher,
    DeiTModel,
    Dinov2ForImageClassification,
    Dinov2Model,
    Dinov2WithRegistersForImageClassification,
    Dinov2WithRegistersModel,
    DistilBertForSequenceClassification,
    DistilBertModel,
    RobertaForSequenceClassification,
    RobertaModel,
    SiglipForImageClassification,
    SiglipTextModel,
    SiglipVisionModel,
    ViTForImageClassification,
    ViTModel,
)

from tokenmerge.core.unsupported import CAUSAL

from .hf_text import BertAdapter, DistilBertAdapter
from .hf_tower import HuggingFaceAdapter
from .hf_vision import CLIPVisionAdapter, Dinov2Adapter, SiglipVisionAdapter, ViTAdapter


@dataclass(frozen=True)
class Family:
    """One family of Hugging Face models: its adapter and, per model class, the path of its encoder."""

    adapter: type[HuggingFaceAdapter]
    towers: tuple[tuple[type[nn.Module], str], ...]

    @property
    def name(self) -> str:
        return "Hugging Face " + " / ".join(model_class.__name__ for model_class, _ in self.towers)


SUPPORTED = (
    Family(ViTAdapter, ((ViTModel, ""), (ViTForImageClassification, "vit"))),
    Family(
        ViTAdapter,
        ((DeiTModel, ""), (DeiTForImageClassification, "deit"), (DeiTForImageClassificationWithTeacher, "deit")),
    ),
    Family(Dinov2Adapter, ((Dinov2Model, ""), (Dinov2ForImageClassification, "dinov2"))),
    Family(
        Dinov2Adapter,
        (
            (Dinov2WithRegistersModel, ""),
            (Dinov2WithRegistersForImageClassification, "dinov2_with_registers"),
        ),
    ),
    Family(
        CLIPVisionAdapter,
        (
            (CLIPVisionModel, ""),
            (CLIPVisionModelWithProjection, "vision_model"),
            (CLIPForImageClassification, "vision_model"),
        ),
    ),
    Family(SiglipVisionAdapter, ((SiglipVisionModel, ""), (SiglipForImageClassification, "vision_model"))),
    Family(BertAdapter, ((BertModel, ""), (BertForSequenceClassification, "bert"))),
    Family(BertAdapter, ((RobertaModel, ""), (RobertaForSequenceClassification, "roberta"))),
    Family(DistilBertAdapter, ((DistilBertModel, ""), (DistilBertForSequenceClassification, "distilbert"))),
)

#: The family names ``tokenmerge.supported_families()`` lists.
FAMILIES = tuple(family.name for family in SUPPORTED)

LAST_TOKEN_POOLING = (
    "it pools its last token (pooler_output = head(last_hidden_state[:, -1])), and Token Merging protects leading "
    "tokens only (class, distillation, register tokens), so the pooled token would be merged and averaged with "
    "others. Merge in the SigLIP vision tower (SiglipVisionModel) instead."
)

#: Classes refused with the reason, checked before the supported ones.
REFUSED: tuple[tuple[type[nn.Module], str], ...] = (
    (CLIPTextModel, CAUSAL),
    (CLIPTextModelWithProjection, CAUSAL),
    (SiglipTextModel, LAST_TOKEN_POOLING),
)


def adapter_for(model: nn.Module) -> HuggingFaceAdapter:
    """The adapter for a Hugging Face model, found from its class.

    Raises:
        TypeError: the class is refused (the reason) or not built in (what is, and what to do).
    """
    name = type(model).__name__
    for model_class, reason in REFUSED:
        if isinstance(model, model_class):
            raise TypeError(f"{name} cannot merge tokens: {reason}")
    for family in SUPPORTED:
        for model_class, tower in family.towers:
            if isinstance(model, model_class):
                return family.adapter(tower)
    raise TypeError(
        f"tokenmerge has no built-in adapter for the Hugging Face model {name}. Built in: {'; '.join(FAMILIES)}. "
        "For another model write a ModelAdapter (README: 'Add merging to your own model'; the classes in "
        "tokenmerge.adapters.hf_vision and hf_text are examples), check it with "
        "tokenmerge.check_adapter(model, adapter, example_input) and pass apply_patch(model, r, adapter=adapter)."
    )
