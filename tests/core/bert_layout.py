"""A small Hugging Face BERT encoder (random weights, built from a config) and an adapter for it, for the tests
of the adapter API on a post-norm model with padded batches."""

import torch
from torch import Tensor, nn

from tokenmerge.adapters.hf_layouts import BERT_LAYER
from tokenmerge.core import ModelAdapter, TokenState, size_weighted_mean


class BertMeanPooled(ModelAdapter):
    """BertModel -> mean-pooled sentence embedding [B, C], the class token protected."""

    layout = BERT_LAYER

    def blocks(self, model: nn.Module):
        return model.encoder.layer

    def protected(self, model: nn.Module) -> int:
        return 1

    def embed(self, model: nn.Module, inputs: Tensor) -> Tensor:
        return model.embeddings(input_ids=inputs)

    def finish(self, model: nn.Module, x: Tensor) -> Tensor:
        return x

    def head(self, model: nn.Module, x: Tensor, state: TokenState, pre_logits: bool = False) -> Tensor:
        return size_weighted_mean(x, state.size)


def tiny_bert(**config) -> nn.Module:
    """A 3-layer, 64-wide BertModel with random weights, in eval mode."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    settings = dict(vocab_size=100, hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=128)
    return BertModel(BertConfig(**settings | config), add_pooling_layer=False).eval()


def reference_embedding(model: nn.Module, ids: Tensor, mask: Tensor) -> Tensor:
    """The unpatched model's masked mean of its last hidden states, [B, C]."""
    hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
    weights = mask[..., None].to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1)
