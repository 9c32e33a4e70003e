"""Evaluation batches that survive bad files: an unreadable sample is reported and skipped, never fatal.

Every modality's dataset returns either ``(input, target)`` or an :class:`Unreadable` record for a file it
could not decode; :func:`collate_skipping` stacks the good ones and keeps the bad ones' paths and reasons in
the batch, so an evaluation can count and list them in its results.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import default_collate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Unreadable:
    """Stands in for a sample whose file could not be read or decoded."""

    path: str
    error: str


@dataclass
class Batch:
    """inputs: [B, ...] stacked inputs; targets: [B] (or [B, K] multi-hot); skipped: unreadable files of this batch."""

    inputs: Tensor
    targets: Tensor
    skipped: list[Unreadable]


#: Set (to "1") while an evaluation reports skipped files itself; inherited by DataLoader workers, forked or spawned.
QUIET_SKIPS = "TOKENMERGE_QUIET_SKIPS"


def collate_skipping(items: list) -> Batch:
    """Stack readable ``(input, target)`` samples; log and drop :class:`Unreadable` ones (kept in ``Batch.skipped``).

    Inside :func:`quiet_skips` nothing is logged here: the caller reports all skipped files once.
    """
    good = [item for item in items if not isinstance(item, Unreadable)]
    skipped = [item for item in items if isinstance(item, Unreadable)]
    if os.environ.get(QUIET_SKIPS) != "1":
        for bad in skipped:
            log.warning("skipping unreadable file %s (%s)", bad.path, bad.error)
    if not good:
        return Batch(torch.empty(0), torch.empty(0, dtype=torch.long), skipped)
    inputs = torch.stack([sample for sample, _ in good])
    targets = torch.stack([torch.as_tensor(target) for _, target in good])
    return Batch(inputs, targets, skipped)


def collate_training(items: list) -> Batch | object:
    """The trainer's default collate: ``default_collate`` for a batch of readable samples (as before), and
    :func:`collate_skipping` (a :class:`Batch` that lists the unreadable ones) when any item is :class:`Unreadable`,
    so one bad file never stops a training run."""
    if any(isinstance(item, Unreadable) for item in items):
        return collate_skipping(items)
    return default_collate(items)


def usable_workers(requested: int) -> int:
    """``requested`` data-loader workers, at most the CPU cores this process may use (a worker per core at most:
    more only compete with each other and with the model); logs when it lowers the number."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if requested > cores:
        log.info("data loader: %d workers asked, %d CPU cores here: using %d", requested, cores, cores)
        return cores
    return requested


def cache_dir() -> Path:
    """Where generated embedded datasets go: $TOKENMERGE_CACHE, else ~/.cache/tokenmerge."""
    return Path(os.environ.get("TOKENMERGE_CACHE", "~/.cache/tokenmerge")).expanduser()


@contextmanager
def quiet_skips() -> Iterator[None]:
    """Within the block, :func:`collate_skipping` does not log (in this process and in loader workers it starts).

    Evaluations read the same files once per setting and per worker; they report the skipped ones once
    themselves (:func:`report_skipped`) instead of repeating a warning for every pass.
    """
    before = os.environ.get(QUIET_SKIPS)
    os.environ[QUIET_SKIPS] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(QUIET_SKIPS, None)
        else:
            os.environ[QUIET_SKIPS] = before


def report_skipped(skipped: list[Unreadable], shown: int = 5) -> str | None:
    """Log one warning for all skipped files (the first ``shown`` named); returns the summary line, or None."""
    if not skipped:
        return None
    summary = f"{len(skipped)} unreadable file{'s' if len(skipped) != 1 else ''} skipped (listed in results.json)"
    named = "; ".join(f"{s.path} ({s.error})" for s in skipped[:shown])
    more = f"; and {len(skipped) - shown} more" if len(skipped) > shown else ""
    log.warning("%s: %s%s", summary, named, more)
    return summary
