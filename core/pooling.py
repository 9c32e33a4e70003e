"""Pooling over merged tokens, weighted by token size.

A token that stands for s input patches counts s times, so the mean over merged tokens equals the mean over
the unmerged patches each token holds (ToMe, Sec. 3: size tracking). Max pooling needs no weights: a merged
token's features are one value for all the patches it holds. Padding (size 0) never takes part in either:
it weighs 0 in the mean and can never be the maximum. Weighted sums are taken in float32 (float64 for float64
tokens) and cast back, so float16 and bfloat16 pooling stays exact enough.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .merge import exact_dtype

POOLS = ("avg", "max", "avgmax")


def size_weighted_mean(x: Tensor, size: Tensor | None) -> Tensor:
    """Mean over tokens, each counted ``size`` times.

    Args:
        x: [B, N, C] tokens.
        size: [B, N, 1] token sizes (any float dtype), or None for a plain mean.

    Returns:
        [B, C] in x's dtype.
    """
    if size is None:
        return x.mean(1)
    exact = exact_dtype(x.dtype)
    size = size.to(exact)
    return ((x.to(exact) * size).sum(1) / size.sum(1)).to(x.dtype)


def real_token_max(x: Tensor, size: Tensor | None) -> Tensor:
    """Max over the real tokens (padding, size 0, is left out). x: [B, N, C], size: [B, N, 1] or None -> [B, C]."""
    if size is None:
        return x.amax(1)
    return x.masked_fill(size == 0, torch.finfo(x.dtype).min).amax(1)


def size_weighted_pool(x: Tensor, size: Tensor | None, mode: str = "avg") -> Tensor:
    """Global pooling of merged tokens: "avg" (size-weighted mean), "max", or "avgmax" (their average).

    Args:
        x: [B, N, C] tokens.
        size: [B, N, 1] token sizes (0 for padding), or None (nothing merged, no padding).
        mode: one of :data:`POOLS`.

    Returns:
        [B, C].
    """
    if mode not in POOLS:
        raise ValueError(f"Unknown pooling {mode!r}; choose one of {POOLS}.")
    if mode == "max":
        return real_token_max(x, size)
    mean = size_weighted_mean(x, size)
    return 0.5 * (real_token_max(x, size) + mean) if mode == "avgmax" else mean
