"""Bipartite soft matching: the merging step of Token Merging.

Follows Bolya et al., "Token Merging: Your ViT But Faster" (ICLR 2023, arXiv 2210.09461), Sec. 3 and
Algorithm 1. Tokens are split alternately by absolute position into set A (even) and set B (odd);
each A token draws an edge to its most similar B token (cosine similarity of the metric); the ``r``
most similar edges are kept and each chosen A token is merged into its B partner.

Padding tokens (``padding`` [B, N], True where a token is padding) merge with each other first and never
into a real token while any other edge is left; weighted by size 0 they leave real tokens unchanged even then.

The first ``protected`` tokens (class, distillation and register tokens) take no part in the
matching: they are never merged and nothing is merged into them. They stay at the front of the
sequence, in order. The merged sequence is laid out as
``[protected | unmerged A tokens (in position order) | B tokens]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .draws import Generators, uniform
from .merge import exact_dtype, initial_size
from .rows import add_tokens_, gather_tokens, put_tokens_

#: ``scatter_reduce`` reductions, and "keep": the B token keeps its own value (the merged A token's is discarded).
MERGE_MODES = ("mean", "sum", "amax", "amin", "prod", "keep")


def max_merge(num_tokens: int, protected: int = 0) -> int:
    """The largest r one matching step can remove: half of the mergeable tokens, rounded down."""
    return max(num_tokens - protected, 0) // 2


def _check_tokens(x: Tensor, num_tokens: int, what: str) -> None:
    if x.dim() != 3 or x.shape[1] != num_tokens:
        raise ValueError(
            f"{what} must have shape [B, {num_tokens}, C] (the token count the matching was computed on); "
            f"got {tuple(x.shape)}."
        )


@dataclass(frozen=True, eq=False)
class Matching:
    """A computed matching; merges or unmerges any per-token tensor aligned with the metric.

    Attributes:
        num_tokens: N, the token count before merging.
        protected: how many leading tokens are kept out of the matching.
        r: how many tokens merging removes (already clamped).
        unm_idx: [B, N_A - r, 1] indices into set A of the tokens that stay unmerged, ascending.
        src_idx: [B, r, 1] indices into set A of the tokens merged away.
        dst_idx: [B, r, 1] indices into set B of the partner of each merged A token.
    """

    num_tokens: int
    protected: int
    r: int
    unm_idx: Tensor | None = None
    src_idx: Tensor | None = None
    dst_idx: Tensor | None = None

    @property
    def num_merged_tokens(self) -> int:
        """N - r, the token count after merging."""
        return self.num_tokens - self.r

    def _layout(self) -> tuple[int, int]:
        """(p, a_start): the protected tokens, and the offset after them where set A starts (A holds even
        absolute positions, B odd ones)."""
        p = self.protected
        return p, p % 2

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x: [B, N, C] -> (protected [B, p, C], A [B, N_A, C], B [B, N_B, C])."""
        p, a_start = self._layout()
        rest = x[:, p:]
        return x[:, :p], rest[:, a_start::2], rest[:, 1 - a_start :: 2]

    def _a_tokens(self, x: Tensor, idx: Tensor) -> Tensor:
        """x [B, N, C], idx [B, K, 1] indices into set A -> those A tokens [B, K, C]."""
        p, a_start = self._layout()
        return gather_tokens(x, p + a_start + 2 * idx)

    def merge(self, x: Tensor, mode: str = "mean") -> Tensor:
        """Merge tokens: each merged A token is reduced into its B partner with ``mode``.

        Args:
            x: [B, N, C] tokens (or sizes [B, N, 1], or a source map [B, N, N_orig]).
            mode: a ``scatter_reduce`` reduction: "mean", "sum", "amax", "amin" or "prod", or "keep" (each B token
                keeps its own value). "mean" averages without weights; use :func:`merge_wavg` for size-weighted
                averages.

        Returns:
            [B, N - r, C]: ``[protected | unmerged A | B]``.
        """
        _check_tokens(x, self.num_tokens, "x")
        if mode not in MERGE_MODES:
            raise ValueError(f"Unknown merge mode {mode!r}; choose one of {MERGE_MODES}.")
        if self.r == 0:
            return x
        batch, _, channels = x.shape
        prot, _, b = self._split(x)
        unm = self._a_tokens(x, self.unm_idx)
        if mode == "keep":
            return torch.cat([prot, unm, b], dim=1)
        src = self._a_tokens(x, self.src_idx)
        dst = b.scatter_reduce(1, self.dst_idx.expand(batch, -1, channels), src, reduce=mode, include_self=True)
        return torch.cat([prot, unm, dst], dim=1)

    def merge_weighted(self, x: Tensor, size: Tensor | None) -> tuple[Tensor, Tensor]:
        """Size-weighted average merge, touching only what changes (what :func:`merge_wavg` runs for a matching).

        Unmerged A tokens are copied as they are; only the B tokens and the r merged A tokens are weighted, summed
        and divided, in float32 (float64 for float64 tokens). ``size=None`` (no merge yet) skips the weighting.

        Args:
            x: [B, N, C] token features.
            size: [B, N, 1] token sizes in float32/float64 (0 for padding), or None for all ones.

        Returns:
            (x [B, N - r, C] in x's dtype, size [B, N - r, 1]).
        """
        _check_tokens(x, self.num_tokens, "x")
        exact = exact_dtype(x.dtype)
        weigh = size is not None
        if size is None:
            size = initial_size(x)
        if self.r == 0:
            return x, size
        prot, _, b = self._split(x)
        prot_size, a_size, b_size = self._split(size)
        src_size = a_size.gather(1, self.src_idx)
        dst_size = b_size.scatter_add(1, self.dst_idx, src_size)
        src = self._a_tokens(x, self.src_idx).to(exact)
        dst = b.to(exact, memory_format=torch.contiguous_format, copy=True)
        if weigh:
            src, dst = src * src_size, dst.mul_(b_size)
        dst = add_tokens_(dst, self.dst_idx, src).div_(dst_size.clamp_min(1))
        unm = self._a_tokens(x, self.unm_idx)
        merged = torch.cat([prot, unm, dst.to(x.dtype)], dim=1)
        return merged, torch.cat([prot_size, a_size.gather(1, self.unm_idx), dst_size], dim=1)

    def unmerge(self, x: Tensor) -> Tensor:
        """Undo the layout of :meth:`merge`: every original token gets the value of the token it went into.

        Args:
            x: [B, N - r, C] merged tokens.

        Returns:
            [B, N, C] in the original token order; a merged A token receives its B partner's value.
        """
        _check_tokens(x, self.num_merged_tokens, "x")
        if self.r == 0:
            return x
        batch, _, channels = x.shape
        p, a_start = self._layout()
        num_unm = self.unm_idx.shape[1]
        prot, unm, dst = x[:, :p], x[:, p : p + num_unm], x[:, p + num_unm :]
        out = x.new_empty(batch, self.num_tokens, channels)
        out[:, :p] = prot
        put_tokens_(out, p + a_start + 2 * self.unm_idx, unm)
        put_tokens_(out, p + a_start + 2 * self.src_idx, gather_tokens(x, p + num_unm + self.dst_idx))
        out[:, p + 1 - a_start :: 2] = dst
        return out


#: Edge weights that order padding around the similarity scores, which lie in [-1, 1].
PADDING_PAIR, PADDING_MIXED = 2.0, -2.0


def _steer_padding(scores: Tensor, padding: Tensor | None, num_tokens: int, protected: int) -> Tensor:
    """scores [B, N_A, N_B] -> the same, with padding-padding edges first and padding-real edges last.

    Args:
        padding: [B, N] True where a token is padding, or None (scores returned as they are).
    """
    if padding is None:
        return scores
    _check_tokens(padding[..., None], num_tokens, "padding")
    _, pad_a, pad_b = Matching(num_tokens, protected, 0)._split(padding[..., None])
    pad_b = pad_b.transpose(1, 2)
    steered = torch.where(pad_a | pad_b, PADDING_MIXED, scores)
    return torch.where(pad_a & pad_b, PADDING_PAIR, steered)


def _select_edges(scores: Tensor, r: int, num_tokens: int, protected: int) -> Matching:
    """Keep the r best A->B edges. scores: [B, N_A, N_B] edge weights (higher merges first)."""
    node_max = scores.amax(dim=-1)  # [B, N_A]: each A token's best edge weight
    # stable: equal weights (padding edges, all +-2) keep position order, the same on every device
    edge_idx = node_max.argsort(dim=-1, descending=True, stable=True)[..., None]  # [B, N_A, 1]
    src_idx = edge_idx[:, :r]
    unm_idx = edge_idx[:, r:].sort(dim=1).values
    # the best partner (the first on ties) only of the r A tokens that merge: argmax costs 15x amax on CPU
    dst_idx = gather_tokens(scores, src_idx).argmax(dim=-1, keepdim=True)  # [B, r, 1]
    return Matching(num_tokens, protected, r, unm_idx, src_idx, dst_idx)


def _clamp_r(num_tokens: int, r: int, protected: int) -> int:
    if protected < 0:
        raise ValueError(f"protected must be >= 0, got {protected}.")
    if protected > num_tokens:
        raise ValueError(f"protected={protected} is larger than the number of tokens ({num_tokens}).")
    return min(max(int(r), 0), max_merge(num_tokens, protected))


def bipartite_soft_matching(metric: Tensor, r: int, *, protected: int = 0, padding: Tensor | None = None) -> Matching:
    """Match tokens by bipartite soft matching (ToMe, Algorithm 1).

    Args:
        metric: [B, N, C] per-token features to compare (ToMe uses the attention keys averaged over heads). Cosine
            similarities are computed in float32 (float64 for a float64 metric) whatever the metric's dtype.
        r: tokens to remove. Clamped to ``(N - protected) // 2`` (at most half the mergeable tokens can
            merge in one step); r <= 0 gives the identity.
        protected: number of leading tokens (class, distillation, register tokens) that never merge.
        padding: [B, N] True where a token is padding (merged first, among themselves), or None.

    Returns:
        A :class:`Matching` whose ``merge`` maps [B, N, C] -> [B, N - r, C].
    """
    if metric.dim() != 3:
        raise ValueError(f"metric must have shape [B, N, C]; got {tuple(metric.shape)}.")
    num_tokens = metric.shape[1]
    r = _clamp_r(num_tokens, r, protected)
    if r == 0:
        return Matching(num_tokens, protected, 0)
    with torch.no_grad():
        metric = metric.to(exact_dtype(metric.dtype))  # bfloat16 scores pick other pairs on near-parallel keys
        metric = metric / metric.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(metric.dtype).tiny)
        _, a, b = Matching(num_tokens, protected, r)._split(metric)
        scores = _steer_padding(a @ b.transpose(-1, -2), padding, num_tokens, protected)
        return _select_edges(scores, r, num_tokens, protected)


def random_bipartite_matching(
    metric: Tensor,
    r: int,
    *,
    protected: int = 0,
    padding: Tensor | None = None,
    generator: Generators = None,
) -> Matching:
    """Ablation baseline: the same A/B split and merge, but edges are chosen at random, not by similarity.

    Args:
        metric: [B, N, C]; only its shape, dtype and device are used.
        r, protected, padding: as in :func:`bipartite_soft_matching`.
        generator: None (torch's global generator), a ``torch.Generator`` or one per sample (on the metric's
            device; see :func:`tokenmerge.core.draws.uniform`) for reproducible draws.
    """
    if metric.dim() != 3:
        raise ValueError(f"metric must have shape [B, N, C]; got {tuple(metric.shape)}.")
    batch, num_tokens, _ = metric.shape
    r = _clamp_r(num_tokens, r, protected)
    if r == 0:
        return Matching(num_tokens, protected, 0)
    rest = num_tokens - protected
    num_a = (rest - protected % 2 + 1) // 2  # set A: even absolute positions after the protected ones
    num_b = rest - num_a
    scores = uniform(batch, num_a, num_b, generator=generator, device=metric.device)
    return _select_edges(_steer_padding(scores, padding, num_tokens, protected), r, num_tokens, protected)
