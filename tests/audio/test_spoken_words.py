"""The embedded spoken-words task: deterministic eSpeak NG clips, SNR in range, disjoint voices, files."""

import csv

import numpy as np
import pytest
import torch

from tokenmerge.audio import spoken_words as sw
from tokenmerge.audio.data import build_audio_loader
from tokenmerge.audio.features import SPOKEN_WORDS


def test_espeak_is_deterministic_whatever_was_spoken_before():
    first = sw.espeak_synthesize("stop", "en-us+m3", rate=150, pitch=40)
    sw.espeak_synthesize("a longer sentence in between", "en-gb-scotland+whisper")
    assert np.array_equal(first, sw.espeak_synthesize("stop", "en-us+m3", rate=150, pitch=40))
    assert first.dtype == np.int16 and 0.2 < len(first) / sw.ESPEAK_SAMPLE_RATE < 1.5
    with pytest.raises(ValueError, match="no voice"):
        sw.espeak_synthesize("stop", "xx-nowhere")
    with pytest.raises(ValueError, match="rate"):
        sw.espeak_synthesize("stop", "en", rate=1000)


def test_clip_is_deterministic_one_second_with_snr_in_range():
    for seed in range(6):
        clip = sw.synthesize_clip("left", "en-029+f2", 200, 60, np.random.default_rng(seed))
        again = sw.synthesize_clip("left", "en-029+f2", 200, 60, np.random.default_rng(seed))
        assert torch.equal(clip.waveform, again.waveform)
        assert clip.waveform.shape == clip.speech.shape == (sw.CLIP_SAMPLES,)
        assert sw.SNR_RANGE[0] <= clip.snr_db <= sw.SNR_RANGE[1]
        utterance = clip.speech.nonzero().flatten()
        assert utterance[0] >= clip.offset and utterance[-1] < sw.CLIP_SAMPLES
        span = slice(clip.offset, clip.offset + sw.speak("left", "en-029+f2", speed=200, pitch=60).numel())
        noise = clip.waveform - clip.speech
        measured = 10 * torch.log10(clip.speech[span].pow(2).mean() / noise.pow(2).mean())
        assert measured.item() == pytest.approx(clip.snr_db, abs=0.01)
        assert sw.PEAK_RANGE[0] - 1e-6 <= clip.waveform.abs().max() <= sw.PEAK_RANGE[1] + 1e-6


def test_train_and_validation_voices_are_disjoint():
    train, val = sw.voices("train"), sw.voices("val")
    variants = lambda names: {name.split("+")[1] for name in names if "+" in name}  # noqa: E731
    assert not set(train) & set(val) and not variants(train) & variants(val)
    assert variants(val) == set(sw.VALIDATION_VARIANTS) and len(variants(train)) > 4 * len(variants(val))
    assert {name.split("+")[0] for name in val} == set(sw.ACCENTS)
    with pytest.raises(ValueError, match="split"):
        sw.voices("test")


def test_training_dataset_is_deterministic_per_seed_and_index():
    data = sw.SpokenWordsDataset(12, seed=3, utterances_per_word=1, train=False)
    same = sw.SpokenWordsDataset(12, seed=3, utterances_per_word=1, train=False)
    features, label = data[11]
    assert features.shape == (1, SPOKEN_WORDS.target_length, 128) and label == 1
    assert torch.equal(features, same[11][0]) and not torch.equal(features, data[1][0])
    assert [data[i][1] for i in range(10)] == list(range(10))


def test_write_audio_dataset_reuses_complete_folders_and_reads_back(tmp_path):
    root = sw.write_audio_dataset(tmp_path, split="val", per_class=2, seed=0)
    with (root / "val.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 20 and rows[0] == {"file": "val/yes_0000.wav", "label": "yes"}
    assert (root / "classes.txt").read_text().split() == list(sw.WORDS)
    stamp = (root / "val/go_0001.wav").stat().st_mtime_ns
    sw.write_audio_dataset(tmp_path, split="val", per_class=2, seed=0)
    assert (root / "val/go_0001.wav").stat().st_mtime_ns == stamp  # reused
    (root / "val/yes_0000.wav").unlink()
    sw.write_audio_dataset(tmp_path, split="val", per_class=2, seed=0)
    assert (root / "val/yes_0000.wav").is_file()  # incomplete: rewritten
    batch = next(iter(build_audio_loader(root / "val.csv", preset=SPOKEN_WORDS, batch_size=20, workers=0)))
    assert batch.inputs.shape == (20, 1, 128, 128) and batch.skipped == []
    assert batch.targets.tolist() == [label for label in range(10) for _ in range(2)]
