"""Evaluation batches that survive bad files: an unreadable sample is reported and skipped, never fatal.

Every modality's dataset returns either ``(input, target)`` or an :class:`Unreadable` record for a file it
could not decode; :func:`collate_skipping` stacks the good ones and keeps the bad ones' paths and reasons in
the batch, so an evaluation can count and list them in its results.

A sample that was read and is used, but not quite as the protocol describes it (a video shorter than one clip,
whose last frame is repeated to fill the clip), comes as :class:`Noted`: the ``(input, target)`` pair with a
:class:`SampleNote`. The collate functions keep the notes in ``Batch.notes``, so evaluation and training count
them and say so once at the end (:func:`report_notes`); datasets that never note anything collate as before.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class SampleNote:
    """Something to count about a sample that was read and used: ``note`` is the kind (counted, e.g. "shorter than
    one clip, last frame repeated"), ``detail`` what it is for this file (e.g. "5 frames; a clip spans 8")."""

    path: str
    note: str
    detail: str = ""


@dataclass(frozen=True)
class Noted:
    """A readable sample, the ``(input, target)`` pair, with a :class:`SampleNote` about it: what a dataset returns
    instead of the bare pair (:func:`noted`)."""

    sample: tuple
    note: SampleNote


def noted(sample: tuple, note: SampleNote | None) -> tuple | Noted:
    """``sample`` with ``note`` attached (:class:`Noted`), or ``sample`` itself when there is nothing to note."""
    return sample if note is None else Noted(sample, note)


@dataclass
class Batch:
    """inputs: [B, ...] stacked inputs; targets: [B] (or [B, K] multi-hot); skipped: unreadable files of this batch;
    notes: the :class:`SampleNote` of its noted samples (which are in ``inputs``)."""

    inputs: Tensor
    targets: Tensor
    skipped: list[Unreadable]
    notes: list[SampleNote] = field(default_factory=list)


#: Set (to "1") while an evaluation reports skipped files itself; inherited by DataLoader workers, forked or spawned.
QUIET_SKIPS = "TOKENMERGE_QUIET_SKIPS"


def collate_skipping(items: list) -> Batch:
    """Stack readable ``(input, target)`` samples (:class:`Noted` ones too, their notes kept in ``Batch.notes``);
    log and drop :class:`Unreadable` ones (kept in ``Batch.skipped``).

    Inside :func:`quiet_skips` nothing is logged here: the caller reports all skipped files once. Notes are never
    logged here: whoever counts them reports them once (:func:`report_notes`).
    """
    notes = [item.note for item in items if isinstance(item, Noted)]
    items = [item.sample if isinstance(item, Noted) else item for item in items]
    good = [item for item in items if not isinstance(item, Unreadable)]
    skipped = [item for item in items if isinstance(item, Unreadable)]
    if os.environ.get(QUIET_SKIPS) != "1":
        for bad in skipped:
            log.warning("skipping unreadable file %s (%s)", bad.path, bad.error)
    if not good:
        return Batch(torch.empty(0), torch.empty(0, dtype=torch.long), skipped, notes)
    inputs = torch.stack([sample for sample, _ in good])
    targets = torch.stack([torch.as_tensor(target) for _, target in good])
    return Batch(inputs, targets, skipped, notes)


def collate_training(items: list) -> Batch | object:
    """The trainer's default collate: ``default_collate`` for a batch of plain readable samples (as before), and
    :func:`collate_skipping` (a :class:`Batch` that lists the unreadable ones and the notes) when any item is
    :class:`Unreadable` or :class:`Noted`, so one bad file never stops a training run and no note is lost."""
    if any(isinstance(item, Unreadable | Noted) for item in items):
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


def notes_by_kind(notes: list[SampleNote]) -> dict[str, list[SampleNote]]:
    """``notes`` grouped by their ``note`` (the kind), kinds in first-seen order."""
    kinds: dict[str, list[SampleNote]] = {}
    for item in notes:
        kinds.setdefault(item.note, []).append(item)
    return kinds


def count_notes(notes: list[SampleNote]) -> dict[str, int]:
    """How many samples have each kind of note: ``{"shorter than one clip, last frame repeated": 2}``."""
    return {kind: len(items) for kind, items in notes_by_kind(notes).items()}


def notes_text(counts: dict[str, int]) -> str:
    """``2 shorter than one clip, last frame repeated; 1 ...`` for counts by kind ("" for none)."""
    return "; ".join(f"{count} {kind}" for kind, count in counts.items() if count)


def note_summary(kind: str, count: int, listed_in: str = "results.json", where: str = "") -> str:
    """``2 samples shorter than one clip, last frame repeated (listed in results.json)``; ``where`` is said after
    the count (e.g. " in training"), ``listed_in`` is the file that lists every path."""
    return f"{count} sample{'s' if count != 1 else ''}{where} {kind} (listed in {listed_in})"


def report_notes(
    notes: list[SampleNote], listed_in: str = "results.json", where: str = "", shown: int = 5
) -> list[str]:
    """Log one warning per kind of note for all noted samples (the first ``shown`` named, with their details);
    returns the summary lines (:func:`note_summary`)."""
    lines = []
    for kind, items in notes_by_kind(notes).items():
        summary = note_summary(kind, len(items), listed_in, where)
        named = "; ".join(f"{n.path} ({n.detail})" if n.detail else n.path for n in items[:shown])
        more = f"; and {len(items) - shown} more" if len(items) > shown else ""
        log.warning("%s: %s%s", summary, named, more)
        lines.append(summary)
    return lines
