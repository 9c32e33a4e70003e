"""Per-forward token state: sizes and (optionally) sources, carried explicitly from block to block.

A fresh :class:`TokenState` is made for every forward pass, so nothing is shared between calls or
models (the official release keeps this in a dict on the model and consumes the schedule with .pop()).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor

from .attention import size_bias
from .draws import Generators
from .dropping import random_token_dropping
from .matching import bipartite_soft_matching, random_bipartite_matching
from .merge import TokenReduction, exact_dtype, merge_source, merge_wavg
from .positions import POSITION_RULES, merge_positions

#: Token reduction methods by name: ToMe itself and the two ablation baselines.
REDUCTIONS: dict[str, Callable[..., TokenReduction]] = {
    "tome": bipartite_soft_matching,
    "random_merge": random_bipartite_matching,
    "random_drop": random_token_dropping,
}


#: The methods that draw at random (they take a ``generator``).
RANDOM_METHODS = ("random_merge", "random_drop")


def get_reduction(name: str, generator: Generators = None) -> Callable[..., TokenReduction]:
    """The reduction function registered under ``name`` (see :data:`REDUCTIONS`); a random method draws from
    ``generator`` (see :func:`tokenmerge.core.draws.uniform`)."""
    if name not in REDUCTIONS:
        raise ValueError(f"Unknown token reduction method {name!r}; choose one of {sorted(REDUCTIONS)}.")
    if name in RANDOM_METHODS and generator is not None:
        return partial(REDUCTIONS[name], generator=generator)
    return REDUCTIONS[name]


@dataclass
class TokenState:
    """What merging has done so far in one forward pass.

    Attributes:
        size: [B, N, 1] tokens' sizes (input patches each stands for; 0 for padding), or None before any merge.
        source: [B, N, N_orig] 0/1 map of input patches per token, or None (not traced / no merge yet).
        trace_source: whether to build ``source``.
        padded: whether some tokens are padding (size 0): they receive no attention, merge with each other
            before real tokens merge (into a real token only when no other pair is left, with weight 0) and
            weigh 0 in pooling.
        generator: where the random baselines draw from: None (torch's global generator) or one generator per
            sample (see :func:`tokenmerge.core.draws.sample_generators`).
        positions: [B, N, P] the tokens' coordinates for a rotary position embedding, or None (a model without
            RoPE); merged by ``position_rule`` (see :mod:`tokenmerge.core.positions`).
        position_rule: "destination" or "mean".
    """

    size: Tensor | None = None
    source: Tensor | None = None
    trace_source: bool = False
    padded: bool = False
    generator: Generators = None
    positions: Tensor | None = None
    position_rule: str = POSITION_RULES[0]

    @classmethod
    def start(cls, x: Tensor, attention_mask: Tensor | None = None, trace_source: bool = False) -> TokenState:
        """The state entering the first block for tokens x [B, N, C].

        Args:
            attention_mask: [B, N] 1/True for real tokens, 0/False for padding (the Hugging Face convention),
                or None when every token is real.
        """
        if attention_mask is None:
            return cls(trace_source=trace_source)
        if attention_mask.shape != x.shape[:2]:
            raise ValueError(
                f"attention_mask must have shape [B, N] = {tuple(x.shape[:2])} (one entry per token the model "
                f"embeds, protected tokens included); got {tuple(attention_mask.shape)}."
            )
        if not torch.compiler.is_compiling():
            _check_mask(attention_mask)
        size = attention_mask.to(x.device).bool()[..., None].to(exact_dtype(x.dtype))
        return cls(size=size, trace_source=trace_source, padded=True)

    @property
    def padding(self) -> Tensor | None:
        """[B, N] True where a token is padding, or None when the batch has no padding."""
        return self.size[..., 0] == 0 if self.padded else None

    def attention_bias(self, proportional: bool, dtype) -> Tensor | None:
        """[B, 1, 1, N] additive attention mask: log(size) if ``proportional``, and -inf on padding; or None."""
        if not (proportional or self.padded):
            return None
        return size_bias(self.size, dtype, proportional)

    def merge(self, reduction: TokenReduction, x: Tensor) -> Tensor:
        """Apply ``reduction`` to x [B, N, C]; updates size (and source, positions); returns [B, N - r, C]."""
        if reduction.r == 0:
            return x
        if self.trace_source:
            self.source = merge_source(reduction, x, self.source)
        if self.positions is not None:
            self.positions = merge_positions(reduction, self.positions, self.size, self.position_rule)
        x, self.size = merge_wavg(reduction, x, self.size)
        return x


def _check_mask(mask: Tensor) -> None:
    """Raise a clear error unless ``mask`` holds only 0/1 (or bool) with a real token in every row."""
    if mask.dtype != torch.bool and not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError(
            "attention_mask must hold 1 (or True) for real tokens and 0 for padding; got other values (an additive "
            "mask such as 0/-inf?). Pass the tokenizer's 0/1 attention_mask."
        )
    if not bool(mask.bool().any(1).all()):
        raise ValueError("attention_mask has a row without any real token; every sequence needs at least one.")
