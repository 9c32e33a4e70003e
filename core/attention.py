"""Proportional attention (ToMe, Eq. 1): softmax(QK^T / sqrt(d) + log s) V.

A token that stands for s patches counts s times as a key. The log-size term enters fused attention
(``torch.nn.functional.scaled_dot_product_attention``) as an additive float mask. A padding token has size 0,
so log(0) = -inf: it receives no attention, with or without the proportional term.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def size_bias(size: Tensor | None, dtype=None, proportional: bool = True) -> Tensor | None:
    """Additive attention mask from token sizes.

    Args:
        size: [B, N, 1] token sizes (0 for padding), or None.
        dtype: dtype of the mask (match the queries for fused kernels); default the size's dtype.
        proportional: add log(size); False keeps only the padding mask (0 for tokens, -inf for padding).

    Returns:
        [B, 1, 1, N] mask that broadcasts over heads and queries, or None when size is None.
    """
    if size is None:
        return None
    weight = size if proportional else (size > 0).to(size.dtype)
    return weight.log().to(dtype or size.dtype)[:, None, None, :, 0]


def proportional_attention(
    q: Tensor, k: Tensor, v: Tensor, size: Tensor | None = None, dropout_p: float = 0.0
) -> Tensor:
    """Fused attention with the proportional-attention bias.

    Args:
        q, k, v: [B, H, N, D].
        size: [B, N, 1] token sizes, or None for plain attention.
        dropout_p: attention dropout probability (training only).

    Returns:
        [B, H, N, D].
    """
    return F.scaled_dot_product_attention(q, k, v, attn_mask=size_bias(size, q.dtype), dropout_p=dropout_p)
