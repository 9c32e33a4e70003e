"""Spectrogram merge pictures: the shared call (captions, title, labels=False) and the old spellings, which warn."""

import numpy as np
import pytest
import torch

from tokenmerge.audio.embedded import create_embedded_model
from tokenmerge.audio.spoken_words import WORDS
from tokenmerge.audio.visualize import visualize_merges, visualize_spectrogram_merges


def tiny_model():
    torch.manual_seed(0)
    return create_embedded_model(len(WORDS), depth=2, embed_dim=32, num_heads=2).eval()


def features(model):
    """Random features [1, T, F] of the model's input size."""
    return torch.randn(1, model.target_length, model.num_mel_bins, generator=torch.Generator().manual_seed(0))


def test_captions_name_r_tokens_and_predicted_class(monkeypatch):
    seen = {}

    def capture(panels, captions, title=None, **kwargs):
        seen.update(captions=captions, title=title)
        return panels[0]

    monkeypatch.setattr("tokenmerge.audio.visualize.label_panels", capture)
    model = tiny_model()
    visualize_merges(model, features(model), r=8, class_names=list(WORDS))
    (caption,) = seen["captions"]
    assert seen["title"] == "SpectrogramViT"  # the default: the model's class name
    assert caption.startswith("ToMe r=8: 65 -> 49 tokens; predicts ")  # 2 blocks of 8
    assert caption.split(" (top")[0].split()[-1] in WORDS
    visualize_merges(model, features(model), r=(8, -1.0), method="random_drop", title="a clip")
    assert seen["title"] == "a clip" and seen["captions"][0].startswith("random drop r=[8, -1.0]: 65 -> ")
    assert " predicts class " in seen["captions"][0]  # no names given


def test_captions_sit_above_the_panels():
    model = tiny_model()
    plain = np.asarray(visualize_merges(model, features(model), r=8, labels=False, scale=2))
    labelled = np.asarray(visualize_merges(model, features(model), r=8, scale=2))
    assert plain.shape == ((128 * 2 + 2) * 2, 128 * 2, 3) and labelled.shape[0] > plain.shape[0]
    assert np.array_equal(labelled[-plain.shape[0] :], plain)


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
