"""Merge scopes: matching restricted to groups of consecutive tokens (for example the tokens of one frame).

A video ViT lays its tokens out time-major, ``[protected | T' groups of S tokens]``. ToMe's own setting
matches all tokens of a clip together, so tokens merge across frames (the "spacetime" scope, one group).
The "frame" scope matches and merges only within each time index, as compared in Pollard & Wray, "Video,
How Do Your Tokens Merge?" (CVPR-W 2025): every group removes the same number of tokens, so batches and
groups stay rectangular and the layout stays time-major.

Any reduction in :data:`tokenmerge.core.state.REDUCTIONS` runs per group through :class:`GroupedReduction`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .matching import _check_tokens
from .merge import TokenReduction, initial_size, merge_wavg


@dataclass(frozen=True, eq=False)
class GroupedReduction:
    """One reduction per group: [B, p + G*S, C] -> [B, p + G*(S - r/G), C], protected tokens untouched.

    Attributes:
        inner: the reduction computed on the groups as a batch, [B*G, S, C] -> [B*G, S - r/G, C].
        num_tokens: N = p + G*S before merging.
        protected: p leading tokens outside every group.
        groups: G.
        r: tokens removed in all (G times the per-group r).
    """

    inner: TokenReduction
    num_tokens: int
    protected: int
    groups: int
    r: int

    @property
    def num_merged_tokens(self) -> int:
        """N - r, the token count after merging."""
        return self.num_tokens - self.r

    def _apply(self, x: Tensor, fn: Callable[[Tensor], Tensor]) -> Tensor:
        batch, _, channels = x.shape
        rest = x[:, self.protected :].reshape(batch * self.groups, -1, channels)
        return torch.cat([x[:, : self.protected], fn(rest).reshape(batch, -1, channels)], dim=1)

    def merge(self, x: Tensor, mode: str = "mean") -> Tensor:
        """x: [B, N, C] -> [B, N - r, C], each group merged on its own (groups stay in order)."""
        _check_tokens(x, self.num_tokens, "x")
        return self._apply(x, lambda groups: self.inner.merge(groups, mode))

    def merge_weighted(self, x: Tensor, size: Tensor | None) -> tuple[Tensor, Tensor]:
        """Size-weighted average merge per group (see :func:`merge_wavg`): x [B, N, C], size [B, N, 1] or None ->
        ([B, N - r, C], [B, N - r, 1])."""
        _check_tokens(x, self.num_tokens, "x")
        batch, _, channels = x.shape
        p = self.protected
        rest_size = None if size is None else size[:, p:].reshape(batch * self.groups, -1, 1)
        merged, merged_size = merge_wavg(self.inner, x[:, p:].reshape(batch * self.groups, -1, channels), rest_size)
        prot_size = initial_size(x[:, :p]) if size is None else size[:, :p]
        return (
            torch.cat([x[:, :p], merged.reshape(batch, -1, channels)], dim=1),
            torch.cat([prot_size, merged_size.reshape(batch, -1, 1)], dim=1),
        )

    def unmerge(self, x: Tensor) -> Tensor:
        """x: [B, N - r, C] -> [B, N, C], the inverse layout of :meth:`merge`."""
        _check_tokens(x, self.num_merged_tokens, "x")
        return self._apply(x, self.inner.unmerge)


def grouped_reduction(
    reduce: Callable[..., TokenReduction],
    metric: Tensor,
    r: int,
    *,
    protected: int,
    groups: int,
    padding: Tensor | None = None,
) -> TokenReduction:
    """Run ``reduce`` (e.g. :func:`bipartite_soft_matching`) independently within each of ``groups`` token groups.

    Args:
        reduce: a reduction function ``(metric, r, protected=...) -> TokenReduction``.
        metric: [B, p + G*S, C] similarity features.
        r: tokens to remove in all; must be a multiple of ``groups`` (each group removes r / G).
        protected: p leading tokens that belong to no group and never merge.
        groups: G; 1 is plain ``reduce``.
        padding: [B, N] True where a token is padding, or None (see :func:`bipartite_soft_matching`).

    Returns:
        A reduction that maps [B, N, C] -> [B, N - r', C], r' = G * min(r / G, S // 2).
    """
    if groups == 1:
        return reduce(metric, r, protected=protected, padding=padding)
    batch, num_tokens, channels = metric.shape
    if (num_tokens - protected) % groups or r % groups:
        raise ValueError(
            f"Cannot split {num_tokens - protected} tokens (r={r}) into {groups} equal groups; the merge schedule "
            "for a grouped scope must remove a multiple of the group count per layer (resolve_schedule(groups=...))."
        )
    per_group = metric[:, protected:].reshape(batch * groups, -1, channels)
    if padding is not None:
        padding = padding[:, protected:].reshape(batch * groups, -1)
    inner = reduce(per_group, r // groups, protected=0, padding=padding)
    return GroupedReduction(inner, num_tokens, protected, groups, inner.r * groups)
