"""Pooling over merged tokens, weighted by token size.

A token that stands for s input patches counts s times, so the mean over merged tokens equals the mean over
the unmerged patches each token holds (ToMe, Sec. 3: size tracking). Max pooling needs no weights: a merged
token's features are one value for all the patches it holds.
"""

from __future__ import annotations

from torch import Tensor

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
    weights = size / size.sum(1, keepdim=True)
    return (x * weights.to(x.dtype)).sum(1)


def size_weighted_pool(x: Tensor, size: Tensor | None, mode: str = "avg") -> Tensor:
    """Global pooling of merged tokens: "avg" (size-weighted mean), "max", or "avgmax" (their average).

    Args:
        x: [B, N, C] tokens.
        size: [B, N, 1] token sizes, or None (nothing merged).
        mode: one of :data:`POOLS`.

    Returns:
        [B, C].
    """
    if mode not in POOLS:
        raise ValueError(f"Unknown pooling {mode!r}; choose one of {POOLS}.")
    if mode == "max":
        return x.amax(1)
    mean = size_weighted_mean(x, size)
    return 0.5 * (x.amax(1) + mean) if mode == "avgmax" else mean
