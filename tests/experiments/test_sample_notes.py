"""Sample notes: a dataset attaches a note to a sample it read (e.g. a video shorter than one clip); the collate
functions keep the notes beside the unreadable files, and cached predictions keep them for a resumed sweep."""

import logging

import pytest
import torch
from torch import nn

from tokenmerge.experiments.data import (
    Batch,
    Noted,
    SampleNote,
    Unreadable,
    collate_skipping,
    collate_training,
    count_notes,
    noted,
    report_notes,
)
from tokenmerge.experiments.evaluation import _cached_predictions, plain_forward

SHORT = "shorter than one clip, last frame repeated"


def test_noted_attaches_a_note_and_nothing_else():
    sample = (torch.zeros(2), 1)
    assert noted(sample, None) is sample
    assert noted(sample, SampleNote("a.mp4", SHORT)) == Noted(sample, SampleNote("a.mp4", SHORT))


def test_collate_keeps_the_notes_beside_the_unreadable_files_and_stacks_the_noted_samples():
    note = SampleNote("short.mp4", SHORT, "5 frames; a clip spans 8")
    items = [(torch.zeros(2), 0), Noted((torch.ones(2), 1), note), Unreadable("bad.mp4", "broken")]
    for collate in (collate_skipping, collate_training):
        batch = collate(items)
        assert isinstance(batch, Batch) and batch.notes == [note] and batch.skipped == [items[2]]
        assert batch.inputs.tolist() == [[0, 0], [1, 1]] and batch.targets.tolist() == [0, 1]
    only_noted = collate_training([(torch.zeros(2), 0), Noted((torch.ones(2), 1), note)])
    assert isinstance(only_noted, Batch) and only_noted.notes == [note] and only_noted.targets.tolist() == [0, 1]
    assert collate_skipping([(torch.zeros(2), 0)]).notes == []


def test_datasets_that_note_nothing_collate_as_before():
    plain = collate_training([(torch.zeros(2), 0), (torch.ones(2), 1)])
    assert isinstance(plain, list) and plain[1].tolist() == [0, 1]  # default_collate's [inputs, targets]


def test_notes_are_counted_by_kind_and_reported_in_one_warning_per_kind(caplog):
    notes = [SampleNote(f"v{i}.mp4", SHORT, f"{i} frames") for i in range(7)] + [SampleNote("x.wav", "padded")]
    assert count_notes(notes) == {SHORT: 7, "padded": 1}
    with caplog.at_level(logging.WARNING):
        lines = report_notes(notes)
    assert lines == [f"7 samples {SHORT} (listed in results.json)", "1 sample padded (listed in results.json)"]
    assert len(caplog.records) == 2 and caplog.records[0].getMessage().endswith("v4.mp4 (4 frames); and 2 more")


class _Loader:
    """One batch with a noted sample; counts how often it is read."""

    def __init__(self, note):
        self.batch, self.reads = Batch(torch.randn(2, 4), torch.tensor([0, 1]), [], [note]), 0

    def __iter__(self):
        self.reads += 1
        yield self.batch


@pytest.mark.parametrize("earlier", [None, "without notes"])
def test_cached_predictions_keep_the_notes_for_a_resumed_sweep(tmp_path, earlier):
    note = SampleNote("short.mp4", SHORT, "5 frames; a clip spans 8")
    model, loader, cache = nn.Linear(4, 3), _Loader(note), tmp_path / "reference.pt"
    if earlier:  # a file written before notes were kept: evaluated again, never read as "no notes"
        old = {"logits": torch.zeros(2, 3), "targets": torch.tensor([0, 1]), "skipped": [], "flops": 1}
        torch.save(old | {"dtype": "float32"}, cache)
    args = (model, loader, "cpu", plain_forward, (4,), cache, "eval", torch.float32)
    first, _ = _cached_predictions(*args)
    resumed, _ = _cached_predictions(*args)
    assert loader.reads == 1  # the second call read the file
    assert first.notes == resumed.notes == [note] and torch.equal(first.logits, resumed.logits)
