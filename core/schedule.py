"""Per-layer merge schedules (ToMe, Sec. 4.1 and Appendix: constant r, and the (r, inflection) ramp).

A schedule spec is one of:
  * ``int`` r: remove r tokens in every layer (the paper's constant schedule);
  * ``list`` of ints, one per layer;
  * ``tuple`` ``(r, inflection)``: a linear ramp with mean r over the layers; inflection in [-1, 1],
    -1 is the paper's decreasing schedule (2r down to 0), 0 is constant, +1 is increasing (0 up to 2r);
  * ``float`` ratio in [0, 0.5]: each layer removes ``floor(ratio * mergeable tokens)`` of the tokens it receives.

:func:`resolve_schedule` turns a spec into the r each layer actually removes, clamped to what
bipartite matching can remove at that layer's token count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Union

from .matching import max_merge

ScheduleSpec = Union[int, float, Sequence[int], tuple[float, float]]


def _check_r(r, what: str) -> None:
    if isinstance(r, bool) or not isinstance(r, int):
        raise TypeError(f"{what} must be an int (tokens to remove per layer); got {r!r}.")
    if r < 0:
        raise ValueError(f"{what} must be >= 0 (tokens to remove); got {r}.")


def ramp_schedule(r: float, inflection: float, num_layers: int) -> list[int]:
    """The paper's linear schedule: mean r, slope set by inflection in [-1, 1] (-1: 2r..0, +1: 0..2r)."""
    if r < 0:
        raise ValueError(f"r must be >= 0; got {r}.")
    if not -1.0 <= inflection <= 1.0:
        raise ValueError(f"inflection must lie in [-1, 1] (-1 decreasing, 0 constant, 1 increasing); got {inflection}.")
    start = r * (1.0 - inflection)
    stop = 2 * r - start
    if num_layers == 1:
        return [int(r)]
    step = (stop - start) / (num_layers - 1)
    return [int(start + step * i + 1e-9) for i in range(num_layers)]


def _requested(spec: ScheduleSpec, num_layers: int | None) -> tuple[list[int], float | None]:
    """Check a spec; returns (r wanted per layer, ratio or None). Raises a clear error for a bad spec.

    With ``num_layers=None`` (model not known yet) everything but a per-layer list's length is checked.
    """
    if num_layers is None:
        num_layers = len(spec) if isinstance(spec, Sequence) and not isinstance(spec, (str, tuple)) else 1
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1; got {num_layers}.")
    if isinstance(spec, float):
        if not 0.0 <= spec <= 0.5:
            raise ValueError(
                f"A float schedule is a ratio of tokens merged per layer and must lie in [0, 0.5]; got {spec}. "
                "Pass an int to remove a fixed number of tokens per layer."
            )
        return [0] * num_layers, spec
    if isinstance(spec, tuple):
        if len(spec) != 2:
            raise ValueError(f"A tuple schedule is (r, inflection); got {spec!r}. Use a list for per-layer values.")
        if isinstance(spec[0], bool) or not isinstance(spec[0], (int, float)):
            raise TypeError(f"The r of an (r, inflection) schedule must be a number; got {spec[0]!r}.")
        return ramp_schedule(spec[0], float(spec[1]), num_layers), None
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        if len(spec) != num_layers:
            raise ValueError(f"A per-layer schedule needs one r per layer ({num_layers}); got {len(spec)} values.")
        for i, r in enumerate(spec):
            _check_r(r, f"r of layer {i}")
        return list(spec), None
    _check_r(spec, "r")
    return [spec] * num_layers, None


def check_schedule(spec: ScheduleSpec, num_layers: int | None = None) -> None:
    """Raise a clear error now if ``spec`` is not a valid schedule (for ``num_layers`` layers, if given).

    Adapters call this when a patch is applied or its config changes, so a bad r fails before any work.
    """
    _requested(spec, num_layers)


def resolve_schedule(
    spec: ScheduleSpec, num_layers: int, num_tokens: int, protected: int = 0, groups: int = 1
) -> list[int]:
    """The number of tokens each layer removes.

    Args:
        spec: a schedule spec (see the module docstring).
        num_layers: transformer blocks that merge.
        num_tokens: N, tokens entering the first block (protected tokens included).
        protected: leading tokens that never merge.
        groups: G > 1 when matching runs within G equal groups of tokens (a video's frames, see
            :mod:`tokenmerge.core.scope`). Each layer then removes a multiple of G (r / G per group):
            the per-layer counts are rounded so that their running total stays the largest multiple of G
            not above the ungrouped schedule's running total (so the grouped and ungrouped scopes cost
            the same to within G - 1 tokens at every layer), clamped to half of each group's tokens.

    Returns:
        One int per layer, each clamped to half of the mergeable tokens at that layer.
    """
    wanted, ratio = _requested(spec, num_layers)
    resolved, n = [], num_tokens
    for r in wanted:
        if ratio is not None:
            r = math.floor(ratio * (n - protected))
        r = min(r, max_merge(n, protected))
        resolved.append(r)
        n -= r
    return resolved if groups == 1 else _split_across_groups(resolved, num_tokens, protected, groups)


def _split_across_groups(schedule: list[int], num_tokens: int, protected: int, groups: int) -> list[int]:
    if groups < 1 or (num_tokens - protected) % groups:
        raise ValueError(f"{num_tokens - protected} mergeable tokens cannot be split into {groups} equal groups.")
    out, n, target, removed = [], num_tokens, 0, 0
    for r in schedule:
        target += r
        per_group = min((target - removed) // groups, max_merge((n - protected) // groups))
        out.append(per_group * groups)
        removed += per_group * groups
        n -= per_group * groups
    return out


def schedule_spec(
    r: int | Sequence[int] = 0, inflection: float | None = None, ratio: float | None = None
) -> ScheduleSpec:
    """Build a schedule spec from flat config fields (as in the shared ``tome`` config group).

    Args:
        r: tokens per layer, or a per-layer list.
        inflection: if set, the (r, inflection) ramp.
        ratio: if set, a ratio schedule (r and inflection must then be left at their defaults).
    """
    if ratio is not None:
        if r or inflection is not None:
            raise ValueError("Set either tome.ratio or tome.r (with an optional tome.inflection), not both.")
        return float(ratio)
    if isinstance(r, Sequence) and not isinstance(r, str):
        if inflection is not None:
            raise ValueError("tome.inflection applies to a single r, not to a per-layer list.")
        return [int(v) for v in r]
    if inflection is not None:
        return (r, float(inflection))
    return r


def tokens_per_layer(schedule: Sequence[int], num_tokens: int) -> list[int]:
    """Token count entering each layer and leaving the last: len(schedule) + 1 values."""
    counts = [num_tokens]
    for r in schedule:
        counts.append(counts[-1] - r)
    return counts


def parse_schedule(text: str) -> ScheduleSpec:
    """A schedule spec from command-line text, in the same forms the Python API takes.

    ``"8"`` -> 8 (constant); ``"8,-1"`` or ``"(8,-1)"`` -> (8, -1.0), the paper's ramp with mean r and an
    inflection; ``"0.25"`` -> 0.25, a ratio of each block's tokens; ``"[8,8,4,4]"`` (or three or more
    comma-separated values) -> a per-block list. The result is checked with :func:`check_schedule`.
    """
    raw = str(text).strip()
    body = raw.strip("()[] ")
    parts = [p.strip() for p in body.split(",")] if body else []
    try:
        numbers = [float(p) if any(c in p for c in ".eE") else int(p) for p in parts]
    except ValueError:
        numbers = []
    if not numbers:
        raise ValueError(
            f"Cannot read the schedule {raw!r}: give r (e.g. 8), r and an inflection for the paper's ramp "
            "(8,-1), a ratio in [0, 0.5] (0.25) or one r per block ([8,8,4,4])."
        )
    if raw.startswith("[") or len(numbers) > 2:
        spec: ScheduleSpec = numbers
    elif len(numbers) == 2:
        spec = (numbers[0], float(numbers[1]))
    else:
        spec = numbers[0]
    check_schedule(spec)
    return spec


def clamp_note(spec: ScheduleSpec, num_layers: int, num_tokens: int, protected: int = 0, groups: int = 1) -> str | None:
    """A sentence saying how ``spec`` was clamped for this model, or None if every block removes what was asked.

    A block can merge at most half of its mergeable tokens (:func:`~tokenmerge.core.matching.max_merge`), so a
    large r (say 1000 on 65 tokens) removes fewer tokens than asked. Ratios never need clamping.
    """
    wanted, ratio = _requested(spec, num_layers)
    if ratio is not None or resolve_schedule(spec, num_layers, num_tokens, protected) == wanted:
        return None
    resolved = resolve_schedule(spec, num_layers, num_tokens, protected, groups=groups)
    shown = list(spec) if isinstance(spec, tuple) else spec
    return (
        f"r={shown} clamped: a block merges at most half of its mergeable tokens, so the {num_layers} blocks remove "
        f"{resolved} ({num_tokens} -> {num_tokens - sum(resolved)} tokens)"
    )
