"""Size-weighted merging, source tracking and unmerging (ToMe, Sec. 3 "Tracking token size").

Every token carries its size s (how many input patches it stands for). Merging takes the
size-weighted average of the features and sums the sizes, so sizes always add up to the original N.
The optional source map records which input patches each token holds, for visualization and for
restoring a full-length output (dense tasks).
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor


class TokenReduction(Protocol):
    """What merging needs from a matching: :class:`Matching` and :class:`TokenDropping` both fit.

    A reduction may also define ``merge_weighted(x, size) -> (x, size)``, a faster size-weighted average that
    :func:`merge_wavg` then uses (with the results of the generic path up to float rounding).
    """

    num_tokens: int
    r: int

    def merge(self, x: Tensor, mode: str = "mean") -> Tensor: ...

    def unmerge(self, x: Tensor) -> Tensor: ...


def merge_wavg(reduction: TokenReduction, x: Tensor, size: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Size-weighted average merge.

    Args:
        reduction: the matching to apply.
        x: [B, N, C] token features.
        size: [B, N, 1] token sizes (counts: 1 per input patch, 0 for padding); None means every token has
            size 1 (see :func:`initial_size`).

    Returns:
        (x [B, N - r, C] in x's dtype, size [B, N - r, 1] in size's dtype): merged features and summed sizes.

    The products ``x * size``, their sums and the division are done in float32 (float64 for float64 tokens) and
    the result is cast back: in float16 a channel of 300 in a token of size 300 would overflow to inf, and in
    bfloat16 the products would round (a size of 257 becomes 256).
    """
    if size is not None and size.shape != (*x.shape[:2], 1):
        raise ValueError(
            f"size must have shape {(*x.shape[:2], 1)} to match x {tuple(x.shape)}; got {tuple(size.shape)}."
        )
    weighted = getattr(reduction, "merge_weighted", None)
    if weighted is not None:  # the reduction's own faster path (a Matching weighs only the tokens that merge)
        return weighted(x, size)
    if size is None:
        size = initial_size(x)
    exact = exact_dtype(x.dtype)
    summed = reduction.merge(x.to(exact) * size.to(exact), mode="sum")
    size = reduction.merge(size, mode="sum")
    merged = summed / size.to(exact).clamp_min(1)  # sizes are counts; only padding (size 0) is clamped
    return merged.to(x.dtype), size


def exact_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype of merge arithmetic, sizes and similarity scores for tokens of ``dtype``: float32, or float64 for
    float64 tokens (float16 and bfloat16 are too coarse for sums over hundreds of tokens)."""
    return torch.promote_types(dtype, torch.float32)


def initial_size(x: Tensor) -> Tensor:
    """Sizes before any merge: [B, N, 1] ones for x [B, N, C].

    Sizes are kept in float32 (float64 for float64 tokens) whatever the token dtype: at 1568 tokens a
    float16/bfloat16 size is not exact, and sizes must keep summing to N.
    """
    return torch.ones(x.shape[0], x.shape[1], 1, device=x.device, dtype=exact_dtype(x.dtype))


def initial_source(num_tokens: int, batch: int, *, device=None, dtype=torch.float32) -> Tensor:
    """The identity source map: [B, N, N], token i holds input patch i."""
    return torch.eye(num_tokens, device=device, dtype=dtype).expand(batch, -1, -1)


def merge_source(reduction: TokenReduction, x: Tensor, source: Tensor | None = None) -> Tensor:
    """Track which input tokens each merged token holds.

    Args:
        reduction: the matching to apply.
        x: [B, N, C] the tokens being merged (for the batch size, N, device and dtype of a new map).
        source: [B, N, N_orig] 0/1 map from the previous layers; None starts from the identity.

    Returns:
        [B, N - r, N_orig] 0/1 map.
    """
    if source is None:
        source = initial_source(x.shape[1], x.shape[0], device=x.device, dtype=x.dtype)
    return reduction.merge(source, mode="amax")


def unmerge_with_source(x: Tensor, source: Tensor) -> Tensor:
    """Restore a full-length sequence: each input position gets the features of the token holding it.

    Args:
        x: [B, N_now, C] merged tokens.
        source: [B, N_now, N_orig] 0/1 source map.

    Returns:
        [B, N_orig, C]. Positions held by no token (dropped by pruning) are zero. Exact in any dtype: each output
        row has at most one nonzero term.
    """
    if source.shape[:2] != x.shape[:2]:
        raise ValueError(f"source {tuple(source.shape)} does not match x {tuple(x.shape)} in batch and token count.")
    return source.transpose(1, 2).to(x.dtype) @ x
