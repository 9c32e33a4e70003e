"""Audio datasets from files: AudioSet-style multi-label indexes, single-label CSVs and class folders.

Files are read with soundfile (WAV, FLAC, OGG, MP3 through libsndfile) and, when it cannot, with PyAV
(compressed containers such as mp4, m4a, webm); torchaudio 2.11's ``load`` needs torchcodec and a system FFmpeg,
so it is not used. Every file is made mono as AudioMAE reads it (channel 0 of a stereo file: :data:`CHANNEL_MODES`),
resampled to 16 kHz with
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
- **JSON data lists** (AudioMAE's format): ``{"data": [{"wav": <file>, "labels": <mids>}, ...]}``, multi-label as
  the ``file,labels`` CSV (``label`` instead of ``labels``: single-label); see
  :mod:`tokenmerge.experiments.data_index`, which reads every index kind.

Training augmentations of AudioMAE's ``dataset.py`` on the waveform, before the features (:class:`AudioDataset` with
``train=True``): per-sample mixup with another clip of the training set (``mixup``, multi-label data only: the
targets become soft vectors) and a random circular shift and gain (``roll_mag_aug``, :func:`roll_and_scale`).

A missing, corrupt or undecodable file never stops an evaluation: its item is an
:class:`~tokenmerge.experiments.data.Unreadable` record (path and reason), which
:func:`~tokenmerge.experiments.data.collate_skipping` logs, drops and lists in the batch's ``skipped``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np
import soundfile
import torch
import torchaudio
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from tokenmerge.experiments.data import Unreadable, collate_skipping, usable_workers
from tokenmerge.experiments.data_index import (
    Classes,
    ClassList,
    DataIndex,
    IndexReader,
    read_class_index,
    read_class_names,
)
from tokenmerge.experiments.weighted_sampler import label_frequency_weights

from .features import AUDIOSET, FbankPreset, FbankTransform, get_preset

__all__ = [
    "AUDIO_EXTENSIONS",
    "AUDIO_INDEX",
    "SAMPLE_RATE",
    "AudioDataset",
    "AudioIndex",
    "AudioReadError",
    "ClassList",
    "build_audio_loader",
    "class_list",
    "index_from_csv",
    "index_from_folders",
    "is_multilabel",
    "load_audio",
    "load_index",
    "mix_waveforms",
    "read_class_index",
    "read_class_names",
    "roll_and_scale",
]

SAMPLE_RATE = 16000
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aac", ".opus", ".mp4", ".webm", ".mkv", ".avi")


class AudioReadError(ValueError):
    """A file that neither soundfile nor PyAV could decode into audio samples."""


#: How :func:`load_audio` makes a multi-channel file mono: ``"first"`` keeps channel 0, as AudioMAE does
#: (``dataset.py:178-179`` loads every channel and subtracts their common mean, then ``kaldi.fbank`` at
#: ``dataset.py:209`` reads ``waveform[max(channel, 0)]`` with its default ``channel=-1``, i.e. channel 0; the
#: common mean is a constant that fbank's per-frame DC removal takes out again); ``"mean"`` averages the channels.
CHANNEL_MODES = ("first", "mean")


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE, channels: str = "first") -> Tensor:
    """Decode an audio file (or the first audio track of a video) to mono at ``sample_rate``.

    Args:
        path: the file.
        sample_rate: Hz of the result.
        channels: ``"first"`` (AudioMAE's reading: channel 0 of a stereo file) or ``"mean"`` (the mean of the
            channels); see :data:`CHANNEL_MODES`.

    Returns:
        [samples] float waveform, resampled with ``torchaudio.functional.resample``.
    """
    if channels not in CHANNEL_MODES:
        raise ValueError(f"channels={channels!r}: choose one of {', '.join(CHANNEL_MODES)}.")
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
    mono = waveform[0] if channels == "first" else waveform.mean(dim=0)
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


#: How audio indexes are read (:mod:`tokenmerge.experiments.data_index`): the CSVs, AudioMAE's JSON data lists
#: and class folders of the module doc, multi-label with a class index.
AUDIO_INDEX = IndexReader(
    kind="Audio",
    noun="audio files",
    extensions=AUDIO_EXTENSIONS,
    json_keys=("wav",),
    multi_label=True,
    headerless_csv=False,
    class_index_csv=True,
)
#: samples: (file path, target) pairs, target a class index or a tuple of them (multi-label); classes: class
#: names by index, or None when unknown (single-label indices only); multi_label: whether targets are multi-hot.
AudioIndex = DataIndex


def class_list(classes: Classes, folder: Path) -> ClassList | None:
    """Classes from names, a class-index CSV (``.csv``) or a names file; None looks in ``folder`` for
    ``class_labels_indices.csv``, then ``classes.txt``, and returns None if neither is there."""
    return AUDIO_INDEX.class_list(classes, folder)


def index_from_csv(csv_path: str | Path, classes: Classes = None) -> AudioIndex:
    """Read a ``file,labels`` (multi-label) or ``file,label`` (single-label) CSV (module doc).

    Args:
        csv_path: the index; relative file paths are relative to its folder.
        classes: class names, a class-index CSV or a names file; None looks beside the CSV
            (:func:`class_list`). Multi-label indexes need it; single-label ones may use plain indices instead.
    """
    return AUDIO_INDEX.read_csv(csv_path, classes)


def index_from_folders(root: str | Path, classes: Classes = None) -> AudioIndex:
    """Index ``root/<class>/<file>`` (extensions :data:`AUDIO_EXTENSIONS`).

    Args:
        root: one sub-folder per class.
        classes: class names in model order, a class-index CSV or a names file; None looks in ``root``
            (:func:`class_list`), else uses the sorted folder names.
    """
    return AUDIO_INDEX.read_folders(root, classes)


def load_index(source: str | Path, classes: Classes = None) -> AudioIndex:
    """A class-folder index for a directory, an AudioMAE JSON data list for a ``.json`` file, else a CSV index."""
    return AUDIO_INDEX.load(source, classes)


#: AudioMAE's Beta(10, 10): the mixup weight (dataset.py:205) and, plus 0.5, roll_mag_aug's gain (dataset.py:173).
MIX_BETA = 10.0


def _beta() -> float:
    """One draw of Beta(10, 10) from torch's global generator."""
    return float(torch.distributions.Beta(MIX_BETA, MIX_BETA).sample())


def roll_and_scale(waveform: Tensor, shift: bool = True) -> Tensor:
    """AudioMAE's ``roll_mag_aug`` (facebookresearch/AudioMAE dataset.py:169-174): a circular shift of the samples by
    a uniform draw in [0, samples) (``shift``), then a gain of Beta(10, 10) + 0.5, in [0.5, 1.5]; torch's global
    generator.

    AudioMAE draws the shift as ``np.random.randint(len(waveform))`` of a [channels, samples] array (line 171), so
    for a mono clip it is always 0 and its runs apply the gain only: ``shift=False`` does that.

    Args:
        waveform: [samples] (or [..., samples]; the last dimension is shifted).
        shift: draw and apply the circular shift; False: the gain only.
    """
    if shift:
        waveform = torch.roll(waveform, int(torch.randint(waveform.shape[-1], ())), dims=-1)
    return waveform * (_beta() + 0.5)


def mix_waveforms(first: Tensor, second: Tensor, lam: float) -> Tensor:
    """``lam * first + (1 - lam) * second`` with its mean removed, as AudioMAE mixes two clips (dataset.py:194-208):
    ``second`` is first cut to the length of ``first``, or zero-padded at its end. Both [samples]."""
    if len(second) > len(first):
        second = second[: len(first)]
    elif len(second) < len(first):
        second = torch.nn.functional.pad(second, (0, len(first) - len(second)))
    mixed = lam * first + (1 - lam) * second
    return mixed - mixed.mean()


class AudioDataset(Dataset):
    """Item i is (features [1, T, F], target) or :class:`~tokenmerge.experiments.data.Unreadable`.

    The target is a class index (single-label) or a multi-hot float vector [K] (multi-label); a mixed training
    item's is the soft vector ``lam * y_i + (1 - lam) * y_j``.

    Training augmentations on the waveform (``train=True`` only), as AudioMAE's ``AudiosetDataset`` applies them
    (facebookresearch/AudioMAE dataset.py:176-208, 251-274), before the features and SpecAugment; all draws come
    from torch's global generator (seeded per process and loader worker by the trainer):

    - ``mixup``: with this probability an item is mixed with clip j, drawn uniformly from the whole training set
      (itself included), at the waveform: each clip has its mean removed (and with ``roll_mag_aug`` its own
      shift and gain), clip j is cut or zero-padded to clip i's length, ``lam ~ Beta(10, 10)``, and the mixture has
      its mean removed (:func:`mix_waveforms`). Multi-label data only (the trainer takes class indices for
      single-label data). An unreadable clip j makes the item :class:`~tokenmerge.experiments.data.Unreadable`.
    - ``roll_mag_aug``: after the mean removal, :func:`roll_and_scale` (``roll_shift`` as its ``shift``).

    Args:
        index: the files and their labels.
        preset: feature settings (:mod:`tokenmerge.audio.features`).
        train: SpecAugment on (training only).
        sample_rate: Hz the audio is resampled to before features.
        mixup: probability in [0, 1] that a training item is mixed with another clip; 0: never.
        roll_mag_aug: random circular shift and gain of every training clip.
        roll_shift: with ``roll_mag_aug``, apply the shift (False: the gain only, what AudioMAE's code does).
    """

    def __init__(
        self,
        index: AudioIndex,
        preset: FbankPreset = AUDIOSET,
        train: bool = False,
        sample_rate: int = SAMPLE_RATE,
        *,
        mixup: float = 0.0,
        roll_mag_aug: bool = False,
        roll_shift: bool = True,
    ):
        self.samples, self.classes, self.multi_label = index.samples, index.classes, index.multi_label
        self.train, self.sample_rate = train, sample_rate
        self.transform = FbankTransform(preset, train)
        if isinstance(mixup, bool) or not isinstance(mixup, int | float) or not 0 <= mixup <= 1:
            raise ValueError(f"mixup={mixup!r} must be a probability in [0, 1] (0: off).")
        if (mixup or roll_mag_aug) and not train:
            raise ValueError("mixup and roll_mag_aug are training augmentations: build the dataset with train=True.")
        if mixup and not self.multi_label:
            raise ValueError(
                "mixup mixes the targets into soft vectors, which only multi-label (multi-hot) training takes; this "
                "index is single-label (class indices). Use a multi-label index or mixup=0."
            )
        self.mixup, self.roll_mag_aug, self.roll_shift = float(mixup), bool(roll_mag_aug), bool(roll_shift)

    def __len__(self) -> int:
        return len(self.samples)

    def sample_weights(self) -> Tensor:
        """[N] weights for the trainer's ``weighted_sampler``: per sample the sum over its labels of
        1000 / (label count + 0.01), as AudioMAE weighs AudioSet
        (:func:`~tokenmerge.experiments.weighted_sampler.label_frequency_weights`)."""
        num_classes = len(self.classes) if self.classes else max(target for _, target in self.samples) + 1
        return label_frequency_weights([target for _, target in self.samples], num_classes)

    def mix_partner(self) -> int | None:
        """The clip a training item is mixed with (uniform over the dataset), with probability ``mixup``; else None."""
        if self.mixup == 0 or float(torch.rand(())) >= self.mixup:
            return None
        return int(torch.randint(len(self.samples), ()))

    def _target(self, target) -> Tensor | int:
        if not self.multi_label:
            return target
        multi_hot = torch.zeros(len(self.classes))
        multi_hot[list(target)] = 1.0
        return multi_hot

    def _augmented(self, waveform: Tensor) -> Tensor:
        """Mean removed, then the shift and gain with ``roll_mag_aug`` (AudioMAE dataset.py:179-181, 187-192)."""
        waveform = waveform - waveform.mean()
        return roll_and_scale(waveform, self.roll_shift) if self.roll_mag_aug else waveform

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor | int] | Unreadable:
        path, target = self.samples[i]
        target = self._target(target)
        partner = self.mix_partner() if self.train else None  # drawn first, as AudioMAE (dataset.py:252-258)
        try:
            waveform = load_audio(path, self.sample_rate)
        except (OSError, ValueError) as error:
            return Unreadable(path, f"{type(error).__name__}: {error}")
        if self.train and (self.mixup or self.roll_mag_aug):
            waveform = self._augmented(waveform)
            if partner is not None:
                other_path, other_target = self.samples[partner]
                try:
                    other = self._augmented(load_audio(other_path, self.sample_rate))
                except (OSError, ValueError) as error:
                    return Unreadable(other_path, f"{type(error).__name__}: {error} (drawn to mix with {path})")
                lam = _beta()
                waveform = mix_waveforms(waveform, other, lam)
                target = lam * target + (1 - lam) * self._target(other_target)
        try:
            features = self.transform(waveform, self.sample_rate)
        except (OSError, ValueError) as error:
            return Unreadable(path, f"{type(error).__name__}: {error}")
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
    """A DataLoader of AudioMAE features over a CSV or JSON index, a class-folder tree, or a ready dataset.

    Args:
        source: a CSV or JSON index, a class folder (see :func:`load_index`), or a dataset whose items are
            ``(features, target)`` such as :class:`tokenmerge.audio.spoken_words.SpokenWordsDataset`.
        preset: feature settings or a preset name (:data:`tokenmerge.audio.features.PRESETS`); for file sources.
        classes: class names, a class-index CSV or a names file; None looks beside the index.
        batch_size, workers: DataLoader settings (workers: at most the CPU cores here).
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
        num_workers=usable_workers(workers),
        collate_fn=collate_skipping,
    )


def is_multilabel(loader: DataLoader) -> bool:
    """Whether a loader from :func:`build_audio_loader` yields multi-hot targets [B, K] (AudioSet-style indexes)."""
    dataset = loader.dataset
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    return bool(getattr(dataset, "multi_label", False))
