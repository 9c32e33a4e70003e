"""Audio datasets from files: AudioSet-style multi-label indexes, single-label CSVs and class folders.

Files are read with soundfile (WAV, FLAC, OGG, MP3 through libsndfile) and, when it cannot, with PyAV
(compressed containers such as mp4, m4a, webm); torchaudio 2.11's ``load`` needs torchcodec and a system FFmpeg,
so it is not used. Every file is mixed down to mono (mean of its channels), resampled to 16 kHz with
``torchaudio.functional.resample``, and turned into AudioMAE's features ([1, T, F]; see
:mod:`tokenmerge.audio.features`), with SpecAugment for training.

Indexes (relative file paths are relative to the index's folder):

- **Multi-label** (AudioSet): a CSV with header ``file,labels``; ``labels`` is a quoted, comma-separated list of
  label ids (AudioSet's mids such as ``/m/09x0r``), display names or class indices. Classes come from a
  class-index CSV in AudioSet's ``class_labels_indices.csv`` format (header ``index,mid,display_name``), as
  AudioMAE's ``--label_csv``. Targets are multi-hot float vectors [K].
- **Single-label** (ESC-50, Speech Commands): a CSV with header ``file,label``, or a folder with one sub-folder of
  audio files per class. Labels are class names or indices; classes come from a list of names (``classes.txt``,
  one per line) or a class-index CSV. Targets are class indices.

A missing, corrupt or undecodable file never stops an evaluation: its item is an
:class:`~tokenmerge.experiments.data.Unreadable` record (path and reason), which
:func:`~tokenmerge.experiments.data.collate_skipping` logs, drops and lists in the batch's ``skipped``.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import av
import numpy as np
import soundfile
import torch
import torchaudio
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from tokenmerge.experiments.data import Unreadable, collate_skipping

from .features import AUDIOSET, FbankPreset, FbankTransform, get_preset

SAMPLE_RATE = 16000
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aac", ".opus", ".mp4", ".webm", ".mkv", ".avi")
CLASS_INDEX_COLUMNS = ("index", "mid", "display_name")


class AudioReadError(ValueError):
    """A file that neither soundfile nor PyAV could decode into audio samples."""


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> Tensor:
    """Decode an audio file (or the first audio track of a video) to mono at ``sample_rate``.

    Returns:
        [samples] float waveform: the mean of the file's channels, resampled with
        ``torchaudio.functional.resample``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Audio file {path} does not exist.")
    try:
        data, rate = soundfile.read(path, dtype="float32", always_2d=True)  # [samples, channels]
        waveform = torch.from_numpy(np.ascontiguousarray(data.T))
    except (soundfile.SoundFileError, RuntimeError) as soundfile_error:
        try:
            waveform, rate = _decode_with_pyav(path)
        except (av.FFmpegError, ValueError) as av_error:
            raise AudioReadError(f"cannot decode {path}: soundfile: {soundfile_error}; PyAV: {av_error}") from None
    if waveform.numel() == 0:
        raise AudioReadError(f"{path} holds no audio samples.")
    mono = waveform.mean(dim=0)
    if rate != sample_rate:
        mono = torchaudio.functional.resample(mono, rate, sample_rate)
    return mono


def _decode_with_pyav(path: Path) -> tuple[Tensor, int]:
    """[channels, samples] float32 and the sample rate of the first audio stream."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise AudioReadError(f"{path} has no audio track.")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp")  # planar float, the stream's own layout and rate
        chunks, rate = [], stream.rate
        for frame in container.decode(stream):
            rate = frame.sample_rate
            chunks += [out.to_ndarray() for out in resampler.resample(frame)]
        chunks += [out.to_ndarray() for out in resampler.resample(None)]
    if not chunks or not rate:
        raise AudioReadError(f"{path} has an audio track without samples.")
    return torch.from_numpy(np.concatenate(chunks, axis=1)), int(rate)


@dataclass(frozen=True)
class AudioIndex:
    """samples: (file path, target) pairs, target a class index or a tuple of them (multi-label);
    classes: class names by index, or None when unknown (single-label indices only); multi_label: whether
    targets are multi-hot."""

    samples: list[tuple[str, int | tuple[int, ...]]]
    classes: list[str] | None
    multi_label: bool


@dataclass(frozen=True)
class ClassList:
    """Class names by index, with the label ids (AudioSet mids) each may be written as."""

    names: list[str]
    ids: list[str]

    @cached_property
    def _positions(self) -> dict[str, int]:
        return {**{name: i for i, name in enumerate(self.names)}, **{id_: i for i, id_ in enumerate(self.ids)}}

    def lookup(self, label: str, where: str) -> int:
        """The index of ``label``: an id (mid), a name, or an integer index."""
        if label in self._positions:
            return self._positions[label]
        try:
            index = int(label)
        except ValueError:
            raise ValueError(
                f"{where}: unknown label {label!r}; it is not a mid, name or index of the {len(self.names)} classes. "
                "Fix the label or pass the class list the index was written for."
            ) from None
        if not 0 <= index < len(self.names):
            raise ValueError(f"{where}: label {index} is out of range; there are {len(self.names)} classes.")
        return index


def read_class_index(path: str | Path) -> ClassList:
    """Read AudioSet's ``class_labels_indices.csv`` format: header ``index,mid,display_name``, indices 0..K-1."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Class index {path} does not exist. Pass AudioSet's class_labels_indices.csv (index,mid,display_name)."
        )
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not set(CLASS_INDEX_COLUMNS) <= set(reader.fieldnames):
            raise ValueError(f"Class index {path} must have the header {','.join(CLASS_INDEX_COLUMNS)}.")
        rows = sorted((int(row["index"]), row["mid"].strip(), row["display_name"].strip()) for row in reader)
    if [index for index, _, _ in rows] != list(range(len(rows))) or not rows:
        raise ValueError(f"Class index {path} must list the indices 0..K-1 exactly once each.")
    return ClassList(names=[name for _, _, name in rows], ids=[mid for _, mid, _ in rows])


def read_class_names(path: str | Path) -> ClassList:
    """Read class names, one per line in the model's output order (blank lines ignored)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Class list {path} does not exist. Write one class name per line, in model order.")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"Class list {path} must name at least one class, each once, one per line.")
    return ClassList(names=names, ids=names)


def class_list(classes: Sequence[str] | str | Path | None, folder: Path) -> ClassList | None:
    """Classes from names, a class-index CSV (``.csv``) or a names file; None looks in ``folder`` for
    ``class_labels_indices.csv``, then ``classes.txt``, and returns None if neither is there."""
    if classes is None:
        for name, reader in (("class_labels_indices.csv", read_class_index), ("classes.txt", read_class_names)):
            if (folder / name).is_file():
                return reader(folder / name)
        return None
    if isinstance(classes, (str, Path)):
        return read_class_index(classes) if Path(classes).suffix.lower() == ".csv" else read_class_names(classes)
    return ClassList(names=list(classes), ids=list(classes))


def index_from_csv(csv_path: str | Path, classes: Sequence[str] | str | Path | None = None) -> AudioIndex:
    """Read a ``file,labels`` (multi-label) or ``file,label`` (single-label) CSV (module doc).

    Args:
        csv_path: the index; relative file paths are relative to its folder.
        classes: class names, a class-index CSV or a names file; None looks beside the CSV
            (:func:`class_list`). Multi-label indexes need it; single-label ones may use plain indices instead.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(
            f"Audio index {csv_path} does not exist. Pass a CSV with header 'file,labels' (multi-label) or "
            "'file,label', or a folder with one sub-folder of audio files per class."
        )
    known = class_list(classes, csv_path.parent)
    with csv_path.open(newline="") as f:
        rows = list(csv.reader(f))
    header = [field.strip() for field in rows[0]] if rows else []
    if len(header) != 2 or header[0] not in ("file", "path") or header[1] not in ("label", "labels"):
        raise ValueError(f"{csv_path} must start with the header 'file,labels' or 'file,label', got {header}.")
    multi_label = header[1] == "labels"
    if known is None and multi_label:
        raise FileNotFoundError(
            f"{csv_path} is a multi-label index but no class index was given or found beside it; pass "
            "classes='class_labels_indices.csv' (header index,mid,display_name)."
        )
    samples = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(field.strip() for field in row):
            continue
        if len(row) != 2:
            raise ValueError(f"{csv_path}:{line}: expected 2 fields (file, quoted labels), got {row}.")
        where = f"{csv_path}:{line}"
        path = Path(row[0].strip())
        path = path if path.is_absolute() else csv_path.parent / path
        if multi_label:
            labels = [label.strip() for label in row[1].split(",") if label.strip()]
            if not labels:
                raise ValueError(f"{where}: no labels; every clip needs at least one.")
            target = tuple(sorted({known.lookup(label, where) for label in labels}))
        else:
            target = _single_label(row[1].strip(), known, where)
        samples.append((str(path), target))
    names = known.names if known is not None else None
    return _checked(AudioIndex(samples, names, multi_label), str(csv_path))


def _single_label(label: str, known: ClassList | None, where: str) -> int:
    if known is not None:
        return known.lookup(label, where)
    if not label.isdigit():
        raise ValueError(
            f"{where}: label {label!r} is a class name but there is no class list. Write classes.txt next to the "
            "index (one name per line, in the model's order) or pass classes=[...]."
        )
    return int(label)


def index_from_folders(root: str | Path, classes: Sequence[str] | str | Path | None = None) -> AudioIndex:
    """Index ``root/<class>/<file>`` (extensions :data:`AUDIO_EXTENSIONS`).

    Args:
        root: one sub-folder per class.
        classes: class names in model order, a class-index CSV or a names file; None looks in ``root``
            (:func:`class_list`), else uses the sorted folder names.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"Audio folder {root} does not exist. Pass a folder with one sub-folder of audio files per class, or "
            "a CSV index."
        )
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    known = class_list(classes, root) or ClassList([p.name for p in folders], [p.name for p in folders])
    samples = []
    for folder in folders:
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS)
        if files:
            label = known.lookup(folder.name, str(folder))
            samples += [(str(file), label) for file in files]
    where = f"{root} (one sub-folder of audio files per class, extensions {', '.join(AUDIO_EXTENSIONS)})"
    return _checked(AudioIndex(samples, known.names, multi_label=False), where)


def _checked(index: AudioIndex, where: str) -> AudioIndex:
    if not index.samples:
        raise ValueError(f"No audio files found in {where}.")
    if not any(Path(path).is_file() for path, _ in index.samples):
        raise FileNotFoundError(
            f"None of the {len(index.samples)} files listed in {where} exist (first: {index.samples[0][0]}). "
            "Relative paths are relative to the index's folder."
        )
    return index


def load_index(source: str | Path, classes: Sequence[str] | str | Path | None = None) -> AudioIndex:
    """A CSV index for a file, a class-folder index for a directory."""
    source = Path(source)
    return index_from_folders(source, classes) if source.is_dir() else index_from_csv(source, classes)


class AudioDataset(Dataset):
    """Item i is (features [1, T, F], target) or :class:`~tokenmerge.experiments.data.Unreadable`.

    The target is a class index (single-label) or a multi-hot float vector [K] (multi-label).

    Args:
        index: the files and their labels.
        preset: feature settings (:mod:`tokenmerge.audio.features`).
        train: SpecAugment on (training only).
        sample_rate: Hz the audio is resampled to before features.
    """

    def __init__(
        self, index: AudioIndex, preset: FbankPreset = AUDIOSET, train: bool = False, sample_rate: int = SAMPLE_RATE
    ):
        self.samples, self.classes, self.multi_label = index.samples, index.classes, index.multi_label
        self.train, self.sample_rate = train, sample_rate
        self.transform = FbankTransform(preset, train)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor | int] | Unreadable:
        path, target = self.samples[i]
        try:
            features = self.transform(load_audio(path, self.sample_rate), self.sample_rate)
        except (OSError, ValueError) as error:
            return Unreadable(path, f"{type(error).__name__}: {error}")
        if self.multi_label:
            multi_hot = torch.zeros(len(self.classes))
            multi_hot[list(target)] = 1.0
            return features, multi_hot
        return features, target


def build_audio_loader(
    source: str | Path | Dataset,
    *,
    preset: FbankPreset | str = AUDIOSET,
    classes: Sequence[str] | str | Path | None = None,
    batch_size: int = 8,
    workers: int = 2,
    max_samples: int | None = None,
    train: bool = False,
    seed: int = 0,
) -> DataLoader:
    """A DataLoader of AudioMAE features over a CSV index, a class-folder tree, or a ready dataset.

    Args:
        source: a CSV index, a class folder (see :func:`load_index`), or a dataset whose items are
            ``(features, target)`` such as :class:`tokenmerge.audio.spoken_words.SpokenWordsDataset`.
        preset: feature settings or a preset name (:data:`tokenmerge.audio.features.PRESETS`); for file sources.
        classes: class names, a class-index CSV or a names file; None looks beside the index.
        batch_size, workers: DataLoader settings.
        max_samples: an evenly spaced subset of this size (quick runs); None for all.
        train: SpecAugment on the features and shuffled order (seeded with ``seed``); a dataset passed as
            ``source`` must have been built with the same ``train``.
        seed: shuffling seed in training.

    Yields:
        :class:`tokenmerge.experiments.data.Batch`: inputs [B, 1, T, F], targets [B] (or [B, K] multi-hot), and the
        unreadable files of the batch in ``skipped``.
    """
    if isinstance(source, Dataset):
        if getattr(source, "train", train) != train:
            raise ValueError(
                f"The dataset was built with train={source.train} but the loader was asked for train={train}; "
                "build the dataset with the same train flag (it switches SpecAugment)."
            )
        dataset = source
    else:
        preset = get_preset(preset) if isinstance(preset, str) else preset
        dataset = AudioDataset(load_index(source, classes), preset, train=train)
    if max_samples is not None and max_samples < len(dataset):
        step = len(dataset) / max_samples
        dataset = Subset(dataset, [int(i * step) for i in range(max_samples)])
    generator = torch.Generator().manual_seed(seed) if train else None
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=train,
        generator=generator,
        num_workers=workers,
        collate_fn=collate_skipping,
    )


def is_multilabel(loader: DataLoader) -> bool:
    """Whether a loader from :func:`build_audio_loader` yields multi-hot targets [B, K] (AudioSet-style indexes)."""
    dataset = loader.dataset
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    return bool(getattr(dataset, "multi_label", False))
