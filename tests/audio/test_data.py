"""Audio datasets: indexes, decoding, mono 16 kHz, unreadable files reported and skipped, clear errors."""

import csv
import json
import logging
import math
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile
import torch

from tokenmerge.audio.data import (
    AudioDataset,
    AudioReadError,
    build_audio_loader,
    index_from_csv,
    load_audio,
    load_index,
)
from tokenmerge.audio.features import AUDIOSET, SPEECH_COMMANDS, fbank
from tokenmerge.experiments.data import Unreadable

MEDIA = Path("/work/shared/media")


def tone(frequency: float, seconds: float = 0.5, rate: int = 16000) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * frequency * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def write_csv(path: Path, rows) -> Path:
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


@pytest.fixture
def clips(tmp_path: Path) -> Path:
    """Four 0.5 s WAV files in tmp_path/audio, and a garbage one."""
    (tmp_path / "audio").mkdir()
    for i, frequency in enumerate((300, 600, 900, 1200)):
        soundfile.write(tmp_path / "audio" / f"clip{i}.wav", tone(frequency), 16000)
    (tmp_path / "audio" / "bad.wav").write_bytes(b"RIFF not really a wave file" * 40)
    return tmp_path


def class_index(path: Path) -> Path:
    return write_csv(
        path, [("index", "mid", "display_name"), (0, "/m/dog", "Dog"), (1, "/m/cat", "Cat"), (2, "/m/car", "Car")]
    )


def test_multi_label_csv_with_class_index(clips):
    labels = class_index(clips / "class_labels_indices.csv")
    index = write_csv(
        clips / "eval.csv",
        [
            ("file", "labels"),
            ("audio/clip0.wav", "/m/dog,/m/car"),
            ("audio/clip1.wav", "/m/cat"),
            ("audio/clip2.wav", "Car"),
        ],
    )
    assert '"/m/dog,/m/car"' in index.read_text()  # quoted, as in AudioSet-style CSVs
    loader = build_audio_loader(index, classes=labels, preset=SPEECH_COMMANDS, batch_size=3, workers=0)
    batch = next(iter(loader))
    assert batch.inputs.shape == (3, 1, 128, 128)
    expected = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert batch.targets.dtype == torch.float32 and torch.equal(batch.targets, expected)
    assert batch.skipped == []
    assert load_index(index).classes == ["Dog", "Cat", "Car"]  # found beside the CSV
    entries = [{"wav": "audio/clip0.wav", "labels": "/m/dog,/m/car"}, {"wav": "audio/clip1.wav", "labels": "/m/cat"}]
    (clips / "eval.json").write_text(json.dumps({"data": entries}))  # AudioMAE's data list
    assert load_index(clips / "eval.json").samples == load_index(index).samples[:2]


def test_single_label_csv_and_folder(clips):
    (clips / "classes.txt").write_text("low\nhigh\n")
    index = write_csv(clips / "val.csv", [("file", "label"), ("audio/clip0.wav", "low"), ("audio/clip3.wav", "1")])
    batch = next(iter(build_audio_loader(index, preset="speechcommands", workers=0)))
    assert batch.inputs.shape == (2, 1, 128, 128) and batch.targets.tolist() == [0, 1]
    for name in ("low", "high"):
        (clips / "folders" / name).mkdir(parents=True)
    for i in (0, 1):
        (clips / "audio" / f"clip{i}.wav").rename(clips / "folders" / "low" / f"clip{i}.wav")
    (clips / "audio" / "clip3.wav").rename(clips / "folders" / "high" / "clip3.flac.wav")
    index = load_index(clips / "folders")
    assert index.classes == ["high", "low"] and [label for _, label in index.samples] == [0, 1, 1]
    assert [label for _, label in load_index(clips / "folders", classes=["low", "high"]).samples] == [1, 0, 0]


def test_resampling_from_44100_and_stereo_read_as_audiomae_reads_it(tmp_path):
    rate = 44100
    left, right = tone(1000, 1.0, rate), tone(3000, 1.0, rate)
    soundfile.write(tmp_path / "stereo.wav", np.stack([left, right], axis=1), rate)
    waveform = load_audio(tmp_path / "stereo.wav")  # AudioMAE's reading: channel 0 only
    assert waveform.shape == (16000,) and waveform.dtype == torch.float32
    spectrum = torch.fft.rfft(waveform).abs()  # 1 Hz bins
    assert spectrum.argmax() == 1000 and spectrum[3000].item() < 1e-3 * spectrum[1000].item()
    mixed = torch.fft.rfft(load_audio(tmp_path / "stereo.wav", channels="mean")).abs()
    assert set(mixed.topk(2).indices.tolist()) == {1000, 3000}
    assert mixed[1000].item() == pytest.approx(mixed[3000].item(), rel=0.02)  # the mean of both channels
    with pytest.raises(ValueError, match="channels='left': choose one of first, mean"):
        load_audio(tmp_path / "stereo.wav", channels="left")
    soundfile.write(tmp_path / "mono.wav", left, rate)
    mono = load_audio(tmp_path / "mono.wav")
    assert torch.fft.rfft(mono).abs().argmax() == 1000 and mono.abs().max().item() == pytest.approx(0.3, abs=0.01)


def test_pyav_fallback_for_compressed_containers(tmp_path):
    path = tmp_path / "clip.m4a"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=22050, layout="stereo")
        frame = av.AudioFrame.from_ndarray(np.stack([tone(500, 0.5, 22050)] * 2), format="fltp", layout="stereo")
        frame.sample_rate = 22050
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(soundfile.LibsndfileError):
        soundfile.read(path)
    waveform = load_audio(path)
    assert abs(waveform.numel() - 8000) < 1000  # AAC adds priming and padding samples
    peak_hz = torch.fft.rfft(waveform).abs().argmax().item() * 16000 / waveform.numel()
    assert peak_hz == pytest.approx(500, abs=5)


def test_corrupt_file_is_reported_and_skipped(clips, caplog):
    index = write_csv(
        clips / "val.csv",
        [("file", "label"), ("audio/clip0.wav", "0"), ("audio/bad.wav", "1"), ("audio/missing.wav", "0")],
    )
    dataset = AudioDataset(load_index(index), SPEECH_COMMANDS)
    assert isinstance(dataset[1], Unreadable) and dataset[1].path.endswith("bad.wav")
    assert "soundfile" in dataset[1].error and "PyAV" in dataset[1].error
    with caplog.at_level(logging.WARNING):
        batch = next(iter(build_audio_loader(index, preset=SPEECH_COMMANDS, batch_size=3, workers=0)))
    assert batch.inputs.shape[0] == 1 and batch.targets.tolist() == [0]
    assert [Path(item.path).name for item in batch.skipped] == ["bad.wav", "missing.wav"]
    assert "bad.wav" in caplog.text
    with pytest.raises(AudioReadError, match="bad.wav"):
        load_audio(clips / "audio" / "bad.wav")


def test_clear_errors(clips):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_audio_loader(clips / "nothing.csv")
    (clips / "empty").mkdir()
    with pytest.raises(ValueError, match="No audio files"):
        load_index(clips / "empty")
    with pytest.raises(ValueError, match="header"):
        index_from_csv(write_csv(clips / "headless.csv", [("audio/clip0.wav", "0")]))
    labels = class_index(clips / "labels.csv")
    multi = write_csv(clips / "multi.csv", [("file", "labels"), ("audio/clip0.wav", "/m/dog,/m/unicorn")])
    with pytest.raises(ValueError, match="unicorn"):
        index_from_csv(multi, classes=labels)
    with pytest.raises(FileNotFoundError, match="class index"):
        index_from_csv(multi)
    single = write_csv(clips / "single.csv", [("file", "label"), ("audio/clip0.wav", "dog")])
    with pytest.raises(ValueError, match="no class list"):
        index_from_csv(single)
    with pytest.raises(ValueError, match="out of range"):
        index_from_csv(write_csv(clips / "range.csv", [("file", "label"), ("audio/clip0.wav", "7")]), ["a", "b"])
    with pytest.raises(FileNotFoundError, match="None of the 1 audio files"):
        index_from_csv(write_csv(clips / "gone.csv", [("file", "label"), ("nowhere.wav", "0")]))


def test_loader_subset_and_training_flag(clips):
    rows = [("file", "label")] + [(f"audio/clip{i}.wav", str(i % 2)) for i in range(4)]
    index = write_csv(clips / "val.csv", rows)
    subset = build_audio_loader(index, preset=SPEECH_COMMANDS, max_samples=2, workers=0)
    assert [Path(subset.dataset.dataset.samples[i][0]).name for i in subset.dataset.indices] == [
        "clip0.wav",
        "clip2.wav",
    ]
    training = build_audio_loader(index, preset=SPEECH_COMMANDS, train=True, workers=0)
    assert training.dataset.transform.train and not subset.dataset.dataset.transform.train
    with pytest.raises(ValueError, match="train="):
        build_audio_loader(training.dataset, train=False)
    features = torch.cat([batch.inputs for batch in build_audio_loader(index, preset=AUDIOSET, workers=0)])
    assert features.shape == (4, 1, 1024, 128)


def test_real_video_audio_track_when_available():
    candidates = [MEDIA / name for name in ("dog.mp4", "mae_st_demo.avi")]
    with_audio = []
    for path in candidates:
        if path.is_file():
            with av.open(str(path)) as container:
                if container.streams.audio:
                    with_audio.append(path)
    if not with_audio:
        pytest.skip(f"no media file with an audio track among {[str(p) for p in candidates]}")
    waveform = load_audio(with_audio[0])
    assert waveform.dim() == 1 and waveform.numel() > 16000 and waveform.abs().max() > 0
    features = fbank(waveform, 16000, target_length=1024)
    assert features.shape == (1, 1024, 128) and torch.isfinite(features).all()
    frames = min(1024, 1 + (waveform.numel() - 400) // 160)
    assert features[0, :frames].std() > 0.05 and not math.isnan(features.mean().item())
