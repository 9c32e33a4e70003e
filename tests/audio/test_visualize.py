"""Spectrogram merge pictures: the shared call (captions, title, labels=False), time and mel-bin axes with tick
labels and patch-edge ticks (the patch size read from the model), and the old spellings, which warn."""

import numpy as np
import pytest
import torch

from tests.picture_helpers import ink_runs
from tokenmerge.audio.embedded import create_embedded_model
from tokenmerge.audio.spoken_words import WORDS
from tokenmerge.audio.visualize import visualize_merges, visualize_spectrogram_merges
from tokenmerge.experiments.visualize import nice_ticks


def tiny_model(patch_size=16):
    torch.manual_seed(0)
    return create_embedded_model(len(WORDS), depth=2, embed_dim=32, num_heads=2, patch_size=patch_size).eval()


def features(model):
    """Random features [1, T, F] of the model's input size."""
    return torch.randn(1, model.target_length, model.num_mel_bins, generator=torch.Generator().manual_seed(0))


def locate(big: np.ndarray, small: np.ndarray) -> tuple[int, int]:
    """(row, column) where the picture ``small`` [h, w, 3] sits unscaled inside ``big`` [H, W, 3]."""
    first = small[0].tobytes()
    for row in range(big.shape[0] - small.shape[0] + 1):
        line, at = big[row].tobytes(), -1
        while (at := line.find(first, at + 1)) >= 0:
            column = at // 3
            if at % 3 == 0 and np.array_equal(big[row : row + small.shape[0], column : column + small.shape[1]], small):
                return row, column
    raise AssertionError("the panels are not in the picture")


@pytest.mark.parametrize("patch_size", [8, 16])
def test_captions_name_r_patches_tokens_and_predicted_class(monkeypatch, patch_size):
    seen = {}

    def capture(panels, captions, title=None, **kwargs):
        seen.update(captions=captions, title=title)
        return panels[0]

    monkeypatch.setattr("tokenmerge.audio.visualize.label_panels", capture)
    model = tiny_model(patch_size)
    tokens = (128 // patch_size) ** 2 + 1  # 128 frames x 128 mel bins, and the class token
    visualize_merges(model, features(model), r=8, class_names=list(WORDS))
    (caption,) = seen["captions"]
    headline, details = caption.split("\n")
    assert seen["title"] == "SpectrogramViT"  # the default: the model's class name
    assert headline.startswith(f"ToMe r=8: {tokens} -> {tokens - 16} tokens; predicts ")  # 2 blocks of 8
    assert headline.split()[-1] in WORDS and f"the {patch_size} x {patch_size} patches" in details
    visualize_merges(model, features(model), r=(8, -1.0), method="random_drop", title="a clip")
    assert seen["title"] == "a clip" and seen["captions"][0].startswith(f"random drop r=[8, -1.0]: {tokens} -> ")
    assert " predicts class " in seen["captions"][0]  # no names given


@pytest.mark.parametrize("patch_size", [8, 16])
def test_axes_frame_the_panels_with_tick_labels_and_patch_edges(patch_size):
    model, scale = tiny_model(patch_size), 2
    plain = np.asarray(visualize_merges(model, features(model), r=8, labels=False, scale=scale))
    labelled = np.asarray(visualize_merges(model, features(model), r=8, scale=scale))
    assert plain.shape == ((128 * 2 + 2) * scale, 128 * scale, 3)
    top, left = locate(labelled, plain)
    base = top + plain.shape[0]  # the x axis
    assert left > 40 and labelled.shape[1] > left + plain.shape[1] and labelled.shape[0] > base + 30  # margins
    ink = (labelled < 128).all(-1)
    # y: one label per tick in each panel, right-aligned just left of the tick marks, centred on its tick
    bins = [b for b in nice_ticks(128, 128 * scale // 48) if b < 128]
    centres = sorted(top + (panel + 128 - b) * scale for panel in (0, 130) for b in bins)
    runs = [(top - 8 + a, top - 8 + b) for a, b in ink_runs(ink[top - 8 : base + 8, left - 20 : left - 10].any(1))]
    assert bins == [0, 50, 100] and len(runs) == len(centres)
    assert all(abs((a + b) / 2 - c) <= 3 for (a, b), c in zip(runs, centres))
    # x: under the axis, tick marks, then their labels, then the title "time (s)"
    marks, labels, title = ink_runs(ink[base:, left:].any(1))
    times = nice_ticks(1.28, 128 * scale // 48)
    label_runs = ink_runs(ink[base + labels[0] : base + labels[1] + 1, left:].any(0), gap=8)
    assert len(label_runs) == len(times) == 3 and title[1] - title[0] >= 12  # 0, 0.5, 1; readable text
    assert all(abs((a + b) / 2 - t * 100 * scale) <= 8 for (a, b), t in zip(label_runs, times))
    # short ticks at every patch edge (the model's patch size), long ones at the labelled times
    ticks = set(np.flatnonzero(ink[base + 2, left : left + plain.shape[1] + 1]).tolist())
    edges = set(range(0, 128 * scale + 1, patch_size * scale))
    assert ticks == edges | {round(t * 100 * scale) for t in times}


def test_captions_sit_above_the_axes():
    model = tiny_model()
    plain = np.asarray(visualize_merges(model, features(model), r=8, labels=False, scale=2))
    labelled = np.asarray(visualize_merges(model, features(model), r=8, scale=2))
    top, _ = locate(labelled, plain)
    assert top > 2 * 20  # title and caption lines above the panels
    assert (labelled[:top, :20] == 255).all(-1).mean() < 1  # the title's text starts at the left


def test_the_old_name_and_keyword_warn_and_still_draw():
    model, words = tiny_model(), list(WORDS)
    new = np.asarray(visualize_merges(model, features(model), r=8, class_names=words, scale=2))
    with pytest.warns(DeprecationWarning, match=r"visualize_spectrogram_merges.*use .*visualize_merges\(.*class_names"):
        old = visualize_spectrogram_merges(model, features(model), 8, classes=words, scale=2)  # r positional
    assert np.array_equal(np.asarray(old), new)
    with pytest.warns(
        DeprecationWarning, match=r"classes=.*use visualize_merges\(\.\.\., class_names=\.\.\.\)"
    ) as seen:
        renamed = visualize_merges(model, features(model), r=8, classes=words, scale=2)
    assert np.array_equal(np.asarray(renamed), new) and seen[0].filename == __file__  # points at the caller
