"""Token rows by index: the gathers and scatters that merging and dropping run in every block.

``x.gather(1, index.expand(-1, -1, C))`` reads its index once per channel; on CPU that costs about 30x an
``index_select`` of whole rows (measured at 32 x 257 x 128: 3.1 ms against 0.10 ms, one thread; see
``benchmarks/merge_overhead.py``). These helpers index the flattened rows [B*N, C] instead, with the same results.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _flat_index(index: Tensor, tokens: int) -> Tensor:
    """index [B, K] or [B, K, 1] of tokens in rows of ``tokens`` -> [B*K] indices into the flattened [B*N] rows."""
    index = index.reshape(index.shape[0], -1)
    offsets = torch.arange(index.shape[0], device=index.device)[:, None] * tokens
    return (index + offsets).reshape(-1)


def gather_tokens(x: Tensor, index: Tensor) -> Tensor:
    """x [B, N, C], index [B, K] or [B, K, 1] -> [B, K, C] with out[b, k] = x[b, index[b, k]]."""
    batch, tokens, channels = x.shape
    rows = x.reshape(batch * tokens, channels).index_select(0, _flat_index(index, tokens))
    return rows.reshape(batch, -1, channels)


def add_tokens_(out: Tensor, index: Tensor, src: Tensor) -> Tensor:
    """out[b, index[b, k]] += src[b, k] in place (repeated indices accumulate); out [B, N, C] contiguous,
    index [B, K] or [B, K, 1], src [B, K, C]. Returns ``out``."""
    batch, tokens, channels = out.shape
    out.view(batch * tokens, channels).index_add_(0, _flat_index(index, tokens), src.reshape(-1, channels))
    return out


def put_tokens_(out: Tensor, index: Tensor, src: Tensor) -> Tensor:
    """out[b, index[b, k]] = src[b, k] in place (indices distinct per sample); out [B, N, C] contiguous,
    index [B, K] or [B, K, 1], src [B, K, C]. Returns ``out``."""
    batch, tokens, channels = out.shape
    out.view(batch * tokens, channels).index_copy_(0, _flat_index(index, tokens), src.reshape(-1, channels))
    return out
