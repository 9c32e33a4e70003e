"""Token Merging for torchvision's ``VisionTransformer`` (``torchvision.models.vit_b_16`` and its siblings).

torchvision builds every block from ``torch.nn.MultiheadAttention`` (``EncoderBlock``: ``ln_1``, ``self_attention``,
``dropout``, ``ln_2``, ``mlp``, pre-norm); the patched block re-drives them through a
:class:`~tokenmerge.core.BlockLayout` with ``multihead_attention``. The model embeds with ``conv_proj``, prepends its
``class_token`` (protected), adds ``encoder.pos_embedding``, and classifies the class token after ``encoder.ln``
with ``heads``, so its head needs no sizes.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tokenmerge.core import BlockLayout, ModelAdapter, TokenState

#: torchvision's ``EncoderBlock``: pre-norm, ``nn.MultiheadAttention`` (batch first), no LayerScale.
TORCHVISION_ENCODER_BLOCK = BlockLayout(
    norm_first=True,
    attn_norm="ln_1",
    mlp_norm="ln_2",
    num_heads="self_attention.num_heads",
    multihead_attention="self_attention",
    attn_out=("self_attention.out_proj", "dropout"),
    mlp=("mlp",),
)


class TorchvisionViTAdapter(ModelAdapter):
    """``torchvision.models.VisionTransformer``: class token protected, class-token head."""

    layout = TORCHVISION_ENCODER_BLOCK
    required_parts = ("_process_input", "class_token", "encoder", "heads")
    supports = "TorchvisionViTAdapter supports torchvision's VisionTransformer"

    def blocks(self, model: nn.Module):
        return model.encoder.layers

    def protected(self, model: nn.Module) -> int:
        return 1

    def embed(self, model: nn.Module, inputs: Tensor) -> Tensor:
        """Images [B, 3, H, W] -> [B, 1 + patches, C] (class token first, position embeddings added)."""
        x = model._process_input(inputs)
        x = torch.cat([model.class_token.expand(x.shape[0], -1, -1), x], dim=1)
        return model.encoder.dropout(x + model.encoder.pos_embedding)

    def finish(self, model: nn.Module, x: Tensor) -> Tensor:
        return model.encoder.ln(x)

    def head_needs_sizes(self, model: nn.Module) -> bool:
        return False

    def head(self, model: nn.Module, x: Tensor, state: TokenState, pre_logits: bool = False) -> Tensor:
        """The class token [B, C] through ``heads`` (or as it is with ``pre_logits``)."""
        return x[:, 0] if pre_logits else model.heads(x[:, 0])
