"""Token Merging adapters for Hugging Face image towers: ViT, DeiT, DINOv2 (with registers), CLIP and SigLIP vision.

Each takes ``pixel_values`` [B, 3, H, W] and returns the output object the model's own forward returns, computed on
the merged tokens (``last_hidden_state`` [B, N', C], N' < N once r > 0; ``handle.forward_tokens(pixel_values)`` gives
the tokens with their sizes). Leading class, distillation and register tokens never merge. Pooling follows the model:
class-token heads read token 0 (1 for DeiT's distillation head); heads that average the patch tokens
(``Dinov2ForImageClassification``, ``CLIPForImageClassification``, ``SiglipForImageClassification``) average them
weighted by size; SigLIP's attention-pooling ("MAP") head attends with log(size) added, as proportional attention does
in the blocks, so a token of size s counts as s copies of itself.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from transformers import (
    CLIPVisionModel,
    CLIPVisionModelWithProjection,
    DeiTForImageClassificationWithTeacher,
    DeiTModel,
    SiglipVisionModel,
)
from transformers.modeling_outputs import BaseModelOutputWithPooling, ImageClassifierOutput
from transformers.models.clip.modeling_clip import CLIPVisionModelOutput
from transformers.models.deit.modeling_deit import DeiTForImageClassificationWithTeacherOutput

from tokenmerge.core import TokenState, size_bias, size_weighted_mean

from .hf_layouts import CLIP_LAYER, DINOV2_LAYER, VIT_LAYER
from .hf_tower import HuggingFaceAdapter


def patch_mean(x: Tensor, state: TokenState, start: int) -> Tensor:
    """Size-weighted mean of the tokens from ``start`` on: x [B, N, C] -> [B, C] (the plain mean before any merge)."""
    size = None if state.size is None else state.size[:, start:]
    return size_weighted_mean(x[:, start:], size)


class ViTAdapter(HuggingFaceAdapter):
    """``ViTModel``, ``ViTForImageClassification`` and DeiT's ``DeiTModel``, ``DeiTForImageClassification``,
    ``DeiTForImageClassificationWithTeacher``: class token (and DeiT's distillation token) protected."""

    layout = VIT_LAYER
    blocks_path = "layers"
    attention_dropout_rate = "attention.attention_dropout"

    def protected(self, model: nn.Module) -> int:
        return 2 if isinstance(self.tower(model), DeiTModel) else 1

    def embed(self, model: nn.Module, inputs: Tensor) -> Tensor:
        """pixel_values [B, 3, H, W] -> [B, prefix + patches, C] (cast to the weights' dtype, as the model does)."""
        embeddings = self.tower(model).embeddings
        return embeddings(inputs.to(embeddings.patch_embeddings.projection.weight.dtype))

    def finish(self, model: nn.Module, x: Tensor) -> Tensor:
        return self.tower(model).layernorm(x)

    def head(self, model: nn.Module, x: Tensor, state: TokenState, pre_logits: bool = False):
        """``BaseModelOutputWithPooling`` (the pooler, if any, on the class token), ``ImageClassifierOutput`` (the
        classifier on the class token) or DeiT's teacher output (class and distillation heads averaged)."""
        if self.is_base_model(model):
            pooled = None if model.pooler is None else model.pooler(x)
            return BaseModelOutputWithPooling(last_hidden_state=x, pooler_output=pooled)
        if isinstance(model, DeiTForImageClassificationWithTeacher):
            cls_logits, distillation_logits = model.cls_classifier(x[:, 0]), model.distillation_classifier(x[:, 1])
            return DeiTForImageClassificationWithTeacherOutput(
                logits=(cls_logits + distillation_logits) / 2,
                cls_logits=cls_logits,
                distillation_logits=distillation_logits,
            )
        return ImageClassifierOutput(logits=model.classifier(x[:, 0]))


class Dinov2Adapter(HuggingFaceAdapter):
    """``Dinov2Model``, ``Dinov2ForImageClassification`` and their ``Dinov2WithRegisters`` twins: class and register
    tokens protected, LayerScale on both branches."""

    layout = DINOV2_LAYER
    attention_dropout_rate = "attention.attention_dropout"

    def protected(self, model: nn.Module) -> int:
        registers = getattr(self.tower(model).embeddings, "register_tokens", None)
        return 1 + (0 if registers is None else registers.shape[1])

    def embed(self, model: nn.Module, inputs: Tensor) -> Tensor:
        """pixel_values [B, 3, H, W] -> [B, 1 + registers + patches, C] (position embeddings interpolated as the
        model does)."""
        return self.tower(model).embeddings(inputs)

    def finish(self, model: nn.Module, x: Tensor) -> Tensor:
        return self.tower(model).layernorm(x)

    def head(self, model: nn.Module, x: Tensor, state: TokenState, pre_logits: bool = False):
        """``BaseModelOutputWithPooling`` (pooled: the class token) or ``ImageClassifierOutput`` (the classifier on
        the class token next to the size-weighted mean of the patch tokens)."""
        if self.is_base_model(model):
            return BaseModelOutputWithPooling(last_hidden_state=x, pooler_output=x[:, 0])
        features = torch.cat([x[:, 0], patch_mean(x, state, self.protected(model))], dim=1)
        return ImageClassifierOutput(logits=model.classifier(features))


class CLIPVisionAdapter(HuggingFaceAdapter):
    """``CLIPVisionModel``, ``CLIPVisionModelWithProjection``, ``CLIPForImageClassification``: class token protected;
    ``last_hidden_state`` is not normed (as in the model), the pooled class token is (``post_layernorm``)."""

    layout = CLIP_LAYER
    blocks_path = "encoder.layers"
    attention_dropout_rate = "self_attn.dropout"

    def protected(self, model: nn.Module) -> int:
        return 1

    def embed(self, model: nn.Module, inputs: Tensor) -> Tensor:
        """pixel_values [B, 3, H, W] -> [B, 1 + patches, C], after ``pre_layrnorm``."""
        tower = self.tower(model)
        return tower.pre_layrnorm(tower.embeddings(inputs))

    def head(self, model: nn.Module, x: Tensor, state: TokenState, pre_logits: bool = False):
        """``BaseModelOutputWithPooling``, ``CLIPVisionModelOutput`` (``image_embeds``: the projected pooled class
        token) or ``ImageClassifierOutput`` (the classifier on the size-weighted mean of the patch tokens)."""
        if isinstance(model, CLIPVisionModel | CLIPVisionModelWithProjection):
            pooled = self.tower(model).post_layernorm(x[:, 0])
            if isinstance(model, CLIPVisionModel):
                return BaseModelOutputWithPooling(last_hidden_state=x, pooler_output=pooled)
            return CLIPVisionModelOutput(image_embeds=model.visual_projection(pooled), last_hidden_state=x)
        return ImageClassifierOutput(logits=model.classifier(patch_mean(x, state, 1)))


def attention_pool(head: nn.Module, x: Tensor, size: Tensor | None) -> Tensor:
    """SigLIP's ``SiglipMultiheadAttentionPoolingHead`` on merged tokens, with log(size) added to its attention.

    Args:
        head: the pooling head (``probe``, ``attention``: an ``nn.MultiheadAttention``, ``layernorm``, ``mlp``).
        x: [B, N, C] tokens after ``post_layernorm``.
        size: [B, N, 1] token sizes, or None before any merge (the head's own computation).

    Returns:
        [B, C] the probe's output.
    """
    probe = head.probe.repeat(x.shape[0], 1, 1)
    bias = size_bias(size, x.dtype)  # [B, 1, 1, N]
    mask = None if bias is None else bias[:, 0].repeat_interleave(head.attention.num_heads, 0)  # [B * H, 1, N]
    pooled = head.attention(probe, x, x, attn_mask=mask, need_weights=False)[0]
    pooled = pooled + head.mlp(head.layernorm(pooled))
    return pooled[:, 0]


class SiglipVisionAdapter(HuggingFaceAdapter):
    """``SiglipVisionModel`` and ``SiglipForImageClassification``: no class token (nothing protected)."""

    layout = CLIP_LAYER
    blocks_path = "encoder.layers"
    attention_dropout_rate = "self_attn.dropout"

    def protected(self, model: nn.Module) -> int:
        return 0

    def embed(self, model: nn.Module, inputs: Tensor) -> Tensor:
        """pixel_values [B, 3, H, W] -> [B, patches, C]."""
        return self.tower(model).embeddings(inputs)

    def finish(self, model: nn.Module, x: Tensor) -> Tensor:
        return self.tower(model).post_layernorm(x)

    def head(self, model: nn.Module, x: Tensor, state: TokenState, pre_logits: bool = False):
        """``BaseModelOutputWithPooling`` (pooled by the MAP head with sizes, None without a head) or
        ``ImageClassifierOutput`` (the classifier on the size-weighted mean of all tokens)."""
        if isinstance(model, SiglipVisionModel):
            pooled = attention_pool(model.head, x, state.size) if model.use_head else None
            return BaseModelOutputWithPooling(last_hidden_state=x, pooler_output=pooled)
        return ImageClassifierOutput(logits=model.classifier(patch_mean(x, state, 0)))
