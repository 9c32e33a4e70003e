"""Proportional attention (ToMe, Eq. 1): softmax(QK^T / sqrt(d) + log s) V.

A token that stands for s patches counts s times as a key. The log-size term is an additive bias per key,
applied exactly in one of two ways (the ``attention`` setting of a patch):

* ``"mask"`` (default): the bias is ``torch.nn.functional.scaled_dot_product_attention``'s float mask. On CUDA a
  float mask keeps SDPA off its flash kernel, which the unmerged baseline (no mask) uses.
* ``"folded"``: the bias is folded into one extra head channel, q' = [q, sqrt(d)] and k' = [k, log s] (and
  the channels padded to a multiple of 8, v with zeros), so that q'k'^T / sqrt(d) = qk^T / sqrt(d) + log s
  and SDPA runs without a mask, on any kernel, eager or compiled. It costs 8 more channels in the two
  attention matmuls; the bias is rounded to the input dtype (bfloat16: about 1% of a token's weight).

A padding token has size 0, so log(0) = -inf: it receives no attention, with or without the proportional term
(folded: a bias of -1e4, whose weight exp(-1e4) is 0 in every dtype).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

#: How merged blocks apply the log-size bias (see the module docstring).
ATTENTION_KERNELS = ("mask", "folded")
#: Bias the folded kernel gives padding keys (finite, so no inf meets a matmul; its softmax weight is 0).
FOLDED_PADDING_BIAS = -1e4
#: Head channels the folded kernel adds (one carries the bias; the others keep the head dim a multiple of 8).
FOLDED_CHANNELS = 8


def check_kernel(kernel: str) -> None:
    """Raise a clear ``ValueError`` unless ``kernel`` is one of :data:`ATTENTION_KERNELS`."""
    if kernel not in ATTENTION_KERNELS:
        raise ValueError(f"Unknown attention kernel {kernel!r}; choose one of {list(ATTENTION_KERNELS)}.")


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


def folded_qkv(q: Tensor, k: Tensor, v: Tensor, bias: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Fold a per-key bias into extra head channels so that plain attention with the default scale adds it.

    Args:
        q, k, v: [B, H, N, D].
        bias: [B, 1, 1, N] additive bias per key (-inf for padding).

    Returns:
        q', k', v': [B, H, N, D + 8], with q'k'^T = qk^T + sqrt(D) * bias (softmax scale 1/sqrt(D) given to SDPA).
    """
    batch, heads, tokens, dim = q.shape
    key_bias = bias[:, 0, 0].clamp_min(FOLDED_PADDING_BIAS).to(k.dtype)  # [B, N]
    zeros = q.new_zeros(batch, heads, tokens, FOLDED_CHANNELS - 1)
    q_extra = torch.cat([q.new_full((batch, heads, tokens, 1), dim**0.5), zeros], -1)
    k_extra = torch.cat([key_bias[:, None, :, None].expand(batch, heads, tokens, 1), zeros], -1)
    return torch.cat([q, q_extra], -1), torch.cat([k, k_extra], -1), F.pad(v, (0, FOLDED_CHANNELS))


def biased_attention(
    q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None = None, dropout_p: float = 0.0, kernel: str = "mask"
) -> Tensor:
    """Fused attention with an additive bias per key, softmax(QK^T / sqrt(d) + bias) V.

    Args:
        q, k, v: [B, H, N, D].
        bias: [B, 1, 1, N] additive bias (see :func:`size_bias`), or None for plain attention.
        dropout_p: attention dropout probability (training only).
        kernel: "mask" or "folded" (see the module docstring); plain attention is the same for both.

    Returns:
        [B, H, N, D].
    """
    check_kernel(kernel)
    if bias is None or kernel == "mask":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout_p)
    dim = q.shape[-1]
    out = F.scaled_dot_product_attention(*folded_qkv(q, k, v, bias), dropout_p=dropout_p, scale=dim**-0.5)
    return out[..., :dim]


def proportional_attention(
    q: Tensor, k: Tensor, v: Tensor, size: Tensor | None = None, dropout_p: float = 0.0, kernel: str = "mask"
) -> Tensor:
    """Fused attention with the proportional-attention bias.

    Args:
        q, k, v: [B, H, N, D].
        size: [B, N, 1] token sizes, or None for plain attention.
        dropout_p: attention dropout probability (training only).
        kernel: "mask" or "folded" (see the module docstring).

    Returns:
        [B, H, N, D].
    """
    return biased_attention(q, k, v, size_bias(size, q.dtype), dropout_p, kernel)
