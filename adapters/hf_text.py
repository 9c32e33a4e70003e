"""Token Merging adapters for Hugging Face text encoders: BERT, RoBERTa and DistilBERT (post-norm, [CLS] first).

Each takes token ids [B, N] (``model(ids)`` or ``model(input_ids=ids)``), or a dict of what the model's embeddings
take (``{"input_ids": ..., "token_type_ids": ...}``), with a padded batch's ``attention_mask`` [B, N] passed beside it
(``model(ids, attention_mask=mask)``): padding then receives no attention and weighs nothing. The [CLS] token (the
first) never merges. Each returns the output object of the model's own forward on the merged tokens
(``last_hidden_state`` [B, N', C], N' < N once r > 0; ``handle.forward_tokens(ids, attention_mask=mask)`` gives their
sizes); the pooled output and the classifiers read the [CLS] token, as the models do.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping

from torch import Tensor, nn
from transformers import RobertaForSequenceClassification
from transformers.modeling_outputs import (
    BaseModelOutput,
    BaseModelOutputWithPoolingAndCrossAttentions,
    SequenceClassifierOutput,
)

from tokenmerge.core import TokenState

from .hf_layouts import BERT_LAYER, DISTILBERT_LAYER
from .hf_tower import HuggingFaceAdapter


def embedding_inputs(embeddings: nn.Module, inputs) -> dict:
    """Token ids [B, N], or a dict of the embedding module's keyword inputs -> its keyword arguments.

    Raises:
        ValueError: the dict holds a key the embeddings do not take (``attention_mask`` belongs beside the input).
    """
    if not isinstance(inputs, Mapping):
        return {"input_ids": inputs}
    accepted = inspect.signature(embeddings.forward).parameters
    unknown = [key for key in inputs if key not in accepted]
    if unknown:
        hint = ""
        if "attention_mask" in unknown:
            hint = " Pass attention_mask beside the input: model(inputs, attention_mask=mask)."
        raise ValueError(
            f"The patched model's input dict may hold what {type(embeddings).__name__} takes "
            f"({', '.join(accepted)}); got {', '.join(unknown)}.{hint}"
        )
    return dict(inputs)


class TextEncoderAdapter(HuggingFaceAdapter):
    """What the BERT-style text encoders share: token ids (or a dict of their embeddings' inputs) embedded by the
    tower's ``embeddings``, [CLS] protected."""

    def protected(self, model: nn.Module) -> int:
        return 1

    def embed(self, model: nn.Module, inputs) -> Tensor:
        """Token ids [B, N] (or a dict, see :func:`embedding_inputs`) -> [B, N, C]."""
        embeddings = self.tower(model).embeddings
        return embeddings(**embedding_inputs(embeddings, inputs))


class BertAdapter(TextEncoderAdapter):
    """``BertModel``, ``BertForSequenceClassification``, ``RobertaModel``, ``RobertaForSequenceClassification``."""

    layout = BERT_LAYER
    input_keywords = ("token_type_ids", "position_ids")  # model(**tokenizer(...)) passes them beside input_ids

    def head(self, model: nn.Module, x: Tensor, state: TokenState, pre_logits: bool = False):
        """``BaseModelOutputWithPoolingAndCrossAttentions`` (the pooler, if any, on [CLS]) or
        ``SequenceClassifierOutput`` (BERT: dropout and classifier on the pooled [CLS]; RoBERTa: its classification
        head, which reads [CLS] itself)."""
        if self.is_base_model(model):
            pooled = None if model.pooler is None else model.pooler(x)
            return BaseModelOutputWithPoolingAndCrossAttentions(last_hidden_state=x, pooler_output=pooled)
        if isinstance(model, RobertaForSequenceClassification):
            return SequenceClassifierOutput(logits=model.classifier(x))
        return SequenceClassifierOutput(logits=model.classifier(model.dropout(model.bert.pooler(x))))


class DistilBertAdapter(TextEncoderAdapter):
    """``DistilBertModel`` and ``DistilBertForSequenceClassification``."""

    layout = DISTILBERT_LAYER
    blocks_path = "transformer.layer"

    def head(self, model: nn.Module, x: Tensor, state: TokenState, pre_logits: bool = False):
        """``BaseModelOutput`` (DistilBERT has no pooler) or ``SequenceClassifierOutput`` (``pre_classifier``, ReLU,
        dropout and ``classifier`` on [CLS])."""
        if self.is_base_model(model):
            return BaseModelOutput(last_hidden_state=x)
        pooled = model.dropout(nn.functional.relu(model.pre_classifier(x[:, 0])))
        return SequenceClassifierOutput(logits=model.classifier(pooled))
