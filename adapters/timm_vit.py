"""Token Merging for timm ``VisionTransformer`` models: the adapter every timm-built model family shares.

Images (``tokenmerge.image``) and spectrograms (``tokenmerge.audio``, AudioMAE is a timm ViT) both use it. The
machinery (handle, schedules, block loop, size-weighted pooling) is ``tokenmerge.core.adapter``; this adapter only says
how a timm ViT embeds, which tokens are protected and how it pools. Unlike the official release (which targets timm
0.4.12 and swaps ``__class__``), the model keeps its class, parameters and ``state_dict`` keys. Supported: class token
or global average pooling (made size-weighted), DeiT distillation token, register tokens, LayerScale, q/k-norm, fused
attention.
"""

from __future__ import annotations

from timm.models.vision_transformer import VisionTransformer
from torch import Tensor, nn

from tokenmerge.core import ModelAdapter, TokenState, size_weighted_pool
from tokenmerge.core.pooling import POOLS


class TimmViTAdapter(ModelAdapter):
    """timm ``VisionTransformer`` and subclasses (DeiT distilled, register tokens, LayerScale, q/k-norm)."""

    required_parts = ("patch_embed", "_pos_embed", "blocks", "norm", "num_prefix_tokens", "forward_head")
    supports = "apply_patch supports timm VisionTransformer-family models"
    #: The timm class whose own ``forward_head`` :meth:`head` re-drives with size-weighted pooling.
    model_class: type[nn.Module] = VisionTransformer
    parts_hint = "(Hierarchical models such as Swin or ConvNeXt have no token sequence to merge.)"

    def check(self, model: nn.Module) -> None:
        super().check(model)
        if getattr(model, "attn_pool", None) is not None:
            raise TypeError(
                "Models with an attention-pooling head (global_pool='map') are not supported yet: the pooling "
                "attention would need proportional attention too. Use a class-token or average-pooled ViT."
            )

    def protected(self, model: nn.Module) -> int:
        return int(model.num_prefix_tokens)

    def embed(self, model: nn.Module, inputs: Tensor) -> Tensor:
        """Images [B, 3, H, W] -> [B, prefix + patches, C]."""
        x = model._pos_embed(model.patch_embed(inputs))
        return model.norm_pre(model.patch_drop(x))

    def head_needs_sizes(self, model: nn.Module) -> bool:
        """Average/max pooling with timm's own head needs sizes; a class token (or a model's own head) does not."""
        return model.global_pool in POOLS and type(model).forward_head is self.model_class.forward_head

    def head(self, model: nn.Module, x: Tensor, state: TokenState, pre_logits: bool = False) -> Tensor:
        """timm's head, with average pooling weighted by token size (a model's own ``forward_head`` is kept)."""
        if not self.head_needs_sizes(model) or state.size is None:
            return type(model).forward_head(model, x, pre_logits=pre_logits)  # the class's, not the patched one
        size = state.size
        if not getattr(model, "pool_include_prefix", False):  # timm's Eva always pools without the prefix
            x, size = x[:, self.protected(model) :], size[:, self.protected(model) :]
        pooled = model.head_drop(model.fc_norm(size_weighted_pool(x, size, model.global_pool)))
        return pooled if pre_logits else model.head(pooled)
