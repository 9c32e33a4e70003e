"""Random token dropping (pruning): a speed and accuracy floor for Token Merging.

Has the same interface as :class:`tokenmerge.core.matching.Matching`, so an adapter can swap it in for
ablations (ToMe paper, Table 1 compares merging against pruning). Dropped tokens are discarded: their
sizes are lost, so sizes no longer sum to N after dropping.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .draws import Generators, uniform
from .matching import _check_tokens, _clamp_r
from .rows import gather_tokens, put_tokens_


@dataclass(frozen=True, eq=False)
class TokenDropping:
    """Drops r random non-protected tokens.

    Attributes:
        num_tokens: N before dropping.
        protected: leading tokens that are always kept.
        r: tokens dropped.
        keep_idx: [B, N - r, 1] ascending indices of the kept tokens (protected ones first).
    """

    num_tokens: int
    protected: int
    r: int
    keep_idx: Tensor | None = None

    @property
    def num_merged_tokens(self) -> int:
        """N - r, the token count after dropping."""
        return self.num_tokens - self.r

    def merge(self, x: Tensor, mode: str = "mean") -> Tensor:
        """x: [B, N, C] -> [B, N - r, C], the kept tokens in position order. ``mode`` is ignored."""
        _check_tokens(x, self.num_tokens, "x")
        if self.r == 0:
            return x
        return gather_tokens(x, self.keep_idx)

    def unmerge(self, x: Tensor) -> Tensor:
        """x: [B, N - r, C] -> [B, N, C] with zeros where tokens were dropped."""
        _check_tokens(x, self.num_merged_tokens, "x")
        if self.r == 0:
            return x
        out = x.new_zeros(x.shape[0], self.num_tokens, x.shape[-1])
        return put_tokens_(out, self.keep_idx, x)


def random_token_dropping(
    metric: Tensor,
    r: int,
    *,
    protected: int = 0,
    padding: Tensor | None = None,
    generator: Generators = None,
) -> TokenDropping:
    """Choose r random non-protected tokens to drop, independently per sample.

    Args:
        metric: [B, N, C]; only its shape and device are used.
        r: tokens to drop, clamped like ToMe's r to ``(N - protected) // 2`` so both remove the same count.
        protected: number of leading tokens that are always kept.
        padding: [B, N] True where a token is padding (dropped before any real token), or None.
        generator: None (torch's global generator), a ``torch.Generator`` or one per sample, on the metric's device
            (see :func:`tokenmerge.core.draws.uniform`).
    """
    if metric.dim() != 3:
        raise ValueError(f"metric must have shape [B, N, C]; got {tuple(metric.shape)}.")
    batch, num_tokens, _ = metric.shape
    r = _clamp_r(num_tokens, r, protected)
    if r == 0:
        return TokenDropping(num_tokens, protected, 0)
    noise = uniform(batch, num_tokens - protected, generator=generator, device=metric.device)
    if padding is not None:
        _check_tokens(padding[..., None], num_tokens, "padding")
        noise = noise.masked_fill(padding[:, protected:], -1.0)
    kept = noise.argsort(dim=-1)[:, r:].sort(dim=-1).values + protected
    prot = torch.arange(protected, device=metric.device).expand(batch, -1)
    keep_idx = torch.cat([prot, kept], dim=1)[..., None]
    return TokenDropping(num_tokens, protected, r, keep_idx)
