"""Evaluation batches that survive bad files: an unreadable sample is reported and skipped, never fatal.

Every modality's dataset returns either ``(input, target)`` or an :class:`Unreadable` record for a file it
could not decode; :func:`collate_skipping` stacks the good ones and keeps the bad ones' paths and reasons in
the batch, so an evaluation can count and list them in its results.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

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


def collate_skipping(items: list) -> Batch:
    """Stack readable ``(input, target)`` samples; log and drop :class:`Unreadable` ones (kept in ``Batch.skipped``)."""
    good = [item for item in items if not isinstance(item, Unreadable)]
    skipped = [item for item in items if isinstance(item, Unreadable)]
    for bad in skipped:
        log.warning("skipping unreadable file %s (%s)", bad.path, bad.error)
    if not good:
        return Batch(torch.empty(0), torch.empty(0, dtype=torch.long), skipped)
    inputs = torch.stack([sample for sample, _ in good])
    targets = torch.stack([torch.as_tensor(target) for _, target in good])
    return Batch(inputs, targets, skipped)


def cache_dir() -> Path:
    """Where generated embedded datasets go: $TOKENMERGE_CACHE, else ~/.cache/tokenmerge."""
    return Path(os.environ.get("TOKENMERGE_CACHE", "~/.cache/tokenmerge")).expanduser()
