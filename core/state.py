"""Per-forward token state: sizes and (optionally) sources, carried explicitly from block to block.

A fresh :class:`TokenState` is made for every forward pass, so nothing is shared between calls or
models (the official release keeps this in a dict on the model and consumes the schedule with .pop()).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from .dropping import random_token_dropping
from .matching import bipartite_soft_matching, random_bipartite_matching
from .merge import TokenReduction, merge_source, merge_wavg

#: Token reduction methods by name: ToMe itself and the two ablation baselines.
REDUCTIONS: dict[str, Callable[..., TokenReduction]] = {
    "tome": bipartite_soft_matching,
    "random_merge": random_bipartite_matching,
    "random_drop": random_token_dropping,
}


def get_reduction(name: str) -> Callable[..., TokenReduction]:
    """The reduction function registered under ``name`` (see :data:`REDUCTIONS`)."""
    if name not in REDUCTIONS:
        raise ValueError(f"Unknown token reduction method {name!r}; choose one of {sorted(REDUCTIONS)}.")
    return REDUCTIONS[name]


@dataclass
class TokenState:
    """What merging has done so far in one forward pass.

    Attributes:
        size: [B, N, 1] tokens' sizes (input patches each stands for), or None before any merge.
        source: [B, N, N_orig] 0/1 map of input patches per token, or None (not traced / no merge yet).
        trace_source: whether to build ``source``.
    """

    size: Tensor | None = None
    source: Tensor | None = None
    trace_source: bool = False

    def merge(self, reduction: TokenReduction, x: Tensor) -> Tensor:
        """Apply ``reduction`` to x [B, N, C]; updates size (and source); returns [B, N - r, C]."""
        if reduction.r == 0:
            return x
        if self.trace_source:
            self.source = merge_source(reduction, x, self.source)
        x, self.size = merge_wavg(reduction, x, self.size)
        return x
