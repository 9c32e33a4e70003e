"""Kinetics-style video evaluation data, sampled into views the way MAE-ST tests its models.

Every video gives V = ``num_temporal_views`` x ``num_spatial_crops`` views, each a clip of ``num_frames``
frames: the model's scores are averaged over the views (see :mod:`tokenmerge.video.evaluate`). The defaults
of :class:`ClipSampling` are MAE-ST's Kinetics-400 test settings (Feichtenhofer et al., NeurIPS 2022;
facebookresearch/mae_st):

- ``num_frames=16``, ``sampling_rate=4``: MAE-ST's fine-tuning recipe and checkpoints are "16x4"
  (``FINETUNE.md``: ``--num_frames 16 --sampling_rate 4``; checkpoint names ``..._16x4.pyth``), and
  ``main_test.py`` tests with the values it is given (its bare argparse defaults are 32 frames at rate 2): pass
  the values a model was fine-tuned with.
- ``target_fps=30``: ``util/kinetics.py`` (``Kinetics(target_fps=30)``); a clip spans
  ``sampling_rate * num_frames / target_fps * fps`` frames of a video at ``fps``, so it covers the same time
  whatever the frame rate.
- ``num_temporal_views=10``, ``num_spatial_crops=3``: ``util/kinetics.py`` (``test_num_ensemble_views=10``,
  ``test_num_spatial_crops=3``) and ``main_test.py`` (``TestMeter(..., 3 * 10, ...)``).
- ``crop_size=224``, ``short_side=224``: ``main_test.py`` passes ``test_crop_size=224``; with 3 crops
  ``Kinetics.__getitem__`` sets the short side to the crop size, so the three crops tile the long side. With 1
  crop it resizes the short side to ``train_jitter_scales[0] = 256`` and takes the centre 224 crop: pass
  ``short_side=256, num_spatial_crops=1`` for that protocol.
- ``mean=(0.45,) * 3``, ``std=(0.225,) * 3``: ``util/kinetics.py`` defaults, applied to pixels in [0, 1].

Temporal views follow ``util/decoder/decoder.py`` (``get_start_end_idx`` with ``use_offset=True``, then
``temporal_sampling``): with ``delta = max(frames - span, 0)``, view ``i`` of ``n`` starts at
``i * floor(delta / (n - 1))`` (one view: ``floor(delta / 2)``, the centre), and its ``num_frames`` indices are
``linspace(start, start + span - 1)`` clamped to the video and truncated to integers. A video shorter than the
span therefore gives the same clip for every temporal view, with its last frame repeated to fill the clip. Such a
video is evaluated as MAE-ST evaluates it, and noted: its item is a :class:`~tokenmerge.experiments.data.Noted`
sample with the note :data:`SHORT_VIDEO` (:func:`short_video_note`), which evaluation counts and reports once,
in results.json and the run's ``samples`` line.
Frames are decoded as MAE-ST's test path decodes them: ``util/kinetics.py:241-272`` reads the file's bytes
(``util/decoder/video_container.py:19-21``) and ``util/decoder/decoder.py:146-156`` decodes them with
torchvision's video reader (``io._read_video_from_memory`` with ``video_min_dimension=max_spatial_scale``, the short
side). That reader converts and resizes each frame in one swscale call, ``sws_getContext(..., SWS_AREA, ...)``
without ``sws_setColorspaceDetails`` (torchvision ``csrc/io/decoder/video_sampler.cpp``, ``VideoSampler::init``),
so YUV becomes RGB with swscale's default, the BT.601 matrix, at limited (MPEG, 16-235) range for ``yuv*`` pixel
formats (full range only for the ``yuvj*`` ones), whatever colour space the file is tagged with (BT.709 HD
clips too). :func:`decode_video` asks PyAV for exactly that (PyAV's own default would follow the tag). The short
side becomes ``short_side`` and the long side ``round(long * short_side / short)``, rounded half up
(``csrc/io/decoder/util.cpp``, ``Util::setFormatDimensions``, case #6); MAE-ST's later
``random_short_side_scale_jitter`` (``util/decoder/transform.py:67-68``) then finds the short side already at
``short_side`` and leaves the frame as it is, so its ``floor`` (lines 72, 74) never applies.

Spatial crops follow ``util/decoder/transform.py`` (``uniform_crop``): crops 0/1/2 at the left/centre/right
(top/centre/bottom when the frame is taller than wide); a single crop is the centre one. View ``v`` is temporal
view ``v // num_spatial_crops`` and crop ``v % num_spatial_crops``, MAE-ST's order. Unlike MAE-ST, which decodes
each view's segment separately, the whole video is decoded once for all views.

A corrupt, truncated or unreadable video never stops an evaluation: its item is an
:class:`~tokenmerge.experiments.data.Unreadable` record, which
:func:`~tokenmerge.experiments.data.collate_skipping` logs, drops and lists in the batch (MAE-ST instead retries
the same file and finally raises).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from tokenmerge.experiments.data import Noted, SampleNote, Unreadable, collate_skipping, noted, usable_workers
from tokenmerge.experiments.data_index import Classes, DataIndex, IndexReader, read_class_names

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v")


@dataclass(frozen=True)
class ClipSampling:
    """How each video becomes views [V, 3, T, H, W]; defaults are MAE-ST's Kinetics test settings (module doc).

    Attributes:
        num_frames: T, frames per clip.
        sampling_rate: stride between sampled frames, in frames at ``target_fps``.
        target_fps: frame rate ``sampling_rate`` refers to; None counts frames of the file as they are.
        num_temporal_views: clips per video, uniformly spaced in time.
        num_spatial_crops: 1 (centre) or 3 (left/centre/right or top/centre/bottom along the long side).
        short_side: the short side of every frame is resized to this.
        crop_size: H = W of every view.
        mean, std: per-channel normalization of pixels in [0, 1].
    """

    num_frames: int = 16
    sampling_rate: int = 4
    target_fps: float | None = 30.0
    num_temporal_views: int = 10
    num_spatial_crops: int = 3
    short_side: int = 224
    crop_size: int = 224
    mean: tuple[float, float, float] = (0.45, 0.45, 0.45)
    std: tuple[float, float, float] = (0.225, 0.225, 0.225)

    def __post_init__(self) -> None:
        for name in ("num_frames", "sampling_rate", "num_temporal_views", "short_side", "crop_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"ClipSampling.{name} must be a positive integer; got {getattr(self, name)}.")
        if self.num_spatial_crops not in (1, 3):
            raise ValueError(f"num_spatial_crops must be 1 (centre) or 3 (as MAE-ST); got {self.num_spatial_crops}.")
        if self.short_side < self.crop_size:
            raise ValueError(
                f"short_side ({self.short_side}) must be at least crop_size ({self.crop_size}) so crops fit."
            )
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError(f"mean and std need 3 values (RGB); got {self.mean} and {self.std}.")

    @property
    def num_views(self) -> int:
        """V = temporal views x spatial crops."""
        return self.num_temporal_views * self.num_spatial_crops

    def clip_span(self, fps: float | None) -> float:
        """Frames of a video at ``fps`` that one clip covers (MAE-ST's ``clip_size``)."""
        span = float(self.sampling_rate * self.num_frames)
        if self.target_fps is not None and fps:
            span *= fps / self.target_fps
        return span


def temporal_indices(video_frames: int, num_frames: int, span: float, num_views: int) -> Tensor:
    """Frame indices [num_views, num_frames] of uniformly spaced clips, by MAE-ST's rule (module doc)."""
    delta = max(video_frames - span, 0)
    rows = []
    for view in range(num_views):
        start = math.floor(delta / 2) if num_views == 1 else view * math.floor(delta / (num_views - 1))
        index = torch.linspace(start, start + span - 1, num_frames)
        rows.append(index.clamp(0, video_frames - 1).long())
    return torch.stack(rows)


#: The note (:class:`~tokenmerge.experiments.data.SampleNote`) of a video shorter than one clip.
SHORT_VIDEO = "shorter than one clip, last frame repeated"


def clip_past_end(video_frames: int, num_frames: int, span: float) -> bool:
    """Whether a clip of ``num_frames`` frames spanning ``span`` samples positions past a video's last frame, which
    :func:`temporal_indices` (and training's random clip) clamp to the last frame: the video is shorter than one
    clip and its last frame repeats. Such a video starts every clip at frame 0 (module doc), so that clip decides."""
    return bool((torch.linspace(0, span - 1, num_frames) >= video_frames).any())


def short_video_note(
    path: str | Path, video_frames: int, fps: float | None, sampling: ClipSampling
) -> SampleNote | None:
    """The :data:`SHORT_VIDEO` note of a video of ``video_frames`` frames at ``fps`` that is shorter than one clip
    of ``sampling`` (:func:`clip_past_end`), or None when its clips lie within it."""
    span = sampling.clip_span(fps)
    if not clip_past_end(video_frames, sampling.num_frames, span):
        return None
    return SampleNote(str(path), SHORT_VIDEO, f"{video_frames} frames; a clip spans {span:g}")


def resized_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(height, width) with the short side set to ``short_side`` and the long one scaled and rounded half up, as
    MAE-ST's decoder sizes frames (torchvision ``Util::setFormatDimensions``: ``round(srcW * min / srcH)``)."""
    if width < height:
        return max(math.floor(height * short_side / width + 0.5), 1), short_side
    return short_side, max(math.floor(width * short_side / height + 0.5), 1)


#: The YUV -> RGB conversion of MAE-ST's decoder (module doc): swscale's default matrix, BT.601.
DECODER_COLORSPACE = "ITU601"


def decoder_color_range(pixel_format: str) -> str:
    """The range swscale assumes for a pixel format without colour details: full (JPEG) for ``yuvj*``, else MPEG."""
    return "JPEG" if pixel_format.startswith("yuvj") else "MPEG"


def to_rgb(frame: av.VideoFrame, width: int, height: int) -> np.ndarray:
    """One frame as MAE-ST's decoder gives it: BT.601 at swscale's default range, resized with the area filter to
    ``width`` x ``height`` in the same swscale call; [height, width, 3] uint8 RGB."""
    range_ = decoder_color_range(frame.format.name)
    rgb = frame.reformat(
        width, height, "rgb24", src_colorspace=DECODER_COLORSPACE, src_color_range=range_, interpolation="AREA"
    )
    return rgb.to_ndarray()


def crop_offsets(height: int, width: int, crop_size: int, num_crops: int) -> list[tuple[int, int]]:
    """Top-left (y, x) of each crop: the centre one, or MAE-ST's ``uniform_crop`` 0/1/2 along the long side."""
    y, x = math.ceil((height - crop_size) / 2), math.ceil((width - crop_size) / 2)
    if num_crops == 1:
        return [(y, x)]
    if height > width:
        return [(0, x), (y, x), (height - crop_size, x)]
    return [(y, 0), (y, x), (y, width - crop_size)]


def decode_video(path: str | Path, short_side: int) -> tuple[np.ndarray, float | None]:
    """Every frame of the first video stream, short side resized to ``short_side``, converted to RGB as MAE-ST's
    decoder converts it (BT.601, limited range, whatever the file's tag: module doc).

    Returns:
        frames [N, H, W, 3] uint8 RGB, and the stream's average frame rate (None when the file has none).

    Raises:
        av.FFmpegError, OSError or ValueError: the file is missing, corrupt, truncated or has no video frames.
    """
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"{path} has no video stream.")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = float(stream.average_rate) if stream.average_rate else None
        frames = []
        for frame in container.decode(stream):
            height, width = resized_size(frame.height, frame.width, short_side)
            frames.append(to_rgb(frame, width, height))
    if not frames:
        raise ValueError(f"{path} has no decodable video frames.")
    return np.stack(frames), fps


def video_views(path: str | Path, sampling: ClipSampling) -> Tensor:
    """Decode one video into its normalized views [V, 3, T, crop_size, crop_size] (V in MAE-ST's order)."""
    return frame_views(*decode_video(path, sampling.short_side), sampling)


def frame_views(frames: np.ndarray, fps: float | None, sampling: ClipSampling) -> Tensor:
    """Decoded frames [N, H, W, 3] uint8 (short side ``sampling.short_side``) at ``fps`` -> normalized views
    [V, 3, T, crop_size, crop_size] (V in MAE-ST's order)."""
    index = temporal_indices(len(frames), sampling.num_frames, sampling.clip_span(fps), sampling.num_temporal_views)
    size, video = sampling.crop_size, torch.from_numpy(frames)
    offsets = crop_offsets(frames.shape[1], frames.shape[2], size, sampling.num_spatial_crops)
    views = torch.stack([video[clip, y : y + size, x : x + size] for clip in index for y, x in offsets])
    views = views.permute(0, 4, 1, 2, 3).contiguous().float().div_(255)  # [V, 3, T, size, size]
    mean, std = (torch.tensor(v).view(3, 1, 1, 1) for v in (sampling.mean, sampling.std))
    return views.sub_(mean).div_(std)


#: How video indexes are read (:mod:`tokenmerge.experiments.data_index`): MAE-ST's ``path label`` lines or a
#: ``path,label`` CSV, JSON data lists naming files by ``video`` or ``path``, class folders; single-label only.
VIDEO_INDEX = IndexReader(
    kind="Video",
    noun="videos",
    extensions=VIDEO_EXTENSIONS,
    json_keys=("video", "path"),
    multi_label=False,
    headerless_csv=True,
    class_index_csv=False,
    hint=" (write the embedded one with tokenmerge.video.moving_objects.write_video_dataset)",
)
#: samples: (video path, class index) pairs; classes: class names by index, or None when unknown.
VideoIndex = DataIndex


def read_classes(path: str | Path) -> list[str]:
    """Class names, one per line, in the model's output order (blank lines ignored)."""
    return read_class_names(path).names


def index_from_csv(csv_path: str | Path, classes: Classes = None) -> VideoIndex:
    """Read ``path,label`` lines (MAE-ST's ``path label`` lines too; an optional ``path,label`` header).

    Args:
        csv_path: the index; relative video paths are relative to its folder.
        classes: class names, or a file of them; None reads ``classes.txt`` next to the CSV if there is one.
            Labels are class indices or class names (names need a class list).
    """
    return VIDEO_INDEX.read_csv(csv_path, classes)


def index_from_folders(root: str | Path, classes: Classes = None) -> VideoIndex:
    """Index ``root/<class>/<video>`` (extensions :data:`VIDEO_EXTENSIONS`).

    Args:
        root: one sub-folder per class.
        classes: class names in model order, or a file of them; None reads ``root/classes.txt`` if there is one,
            else uses the sorted folder names (torchvision ``ImageFolder``'s order).
    """
    return VIDEO_INDEX.read_folders(root, classes)


def load_index(source: str | Path, classes: Classes = None) -> VideoIndex:
    """A class-folder index for a directory, a JSON data list for a ``.json`` file (``{"data": [{"video": <path>,
    "label": <label>}, ...]}``, :mod:`tokenmerge.experiments.data_index`), else a CSV index (:func:`index_from_csv`).
    """
    return VIDEO_INDEX.load(source, classes)


class VideoDataset(Dataset):
    """Item i is (views [V, 3, T, crop, crop], class index), or :class:`Unreadable` if the video fails to decode;
    a video shorter than one clip gives that pair as :class:`Noted` (:func:`short_video_note`)."""

    def __init__(self, index: VideoIndex, sampling: ClipSampling = ClipSampling()):
        self.samples, self.classes, self.sampling = index.samples, index.classes, sampling

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Tensor, int] | Noted | Unreadable:
        path, label = self.samples[i]
        try:
            frames, fps = decode_video(path, self.sampling.short_side)
            views = frame_views(frames, fps, self.sampling)
        except (av.FFmpegError, OSError, ValueError) as error:
            return Unreadable(path, f"{type(error).__name__}: {error}")
        return noted((views, label), short_video_note(path, len(frames), fps, self.sampling))


def build_video_loader(
    source: str | Path,
    *,
    sampling: ClipSampling = ClipSampling(),
    classes: Sequence[str] | str | Path | None = None,
    batch_size: int = 4,
    workers: int = 2,
    max_samples: int | None = None,
) -> DataLoader:
    """A DataLoader of multi-view clips over a CSV or JSON index or a class-folder tree (see :func:`load_index`).

    A sample holds V x 3 x T x crop^2 floats: 30 views of 16 x 224 x 224 are 289 MB, so keep batches small
    with MAE-ST's settings.

    Args:
        source: a CSV of ``path,label`` lines, a JSON data list, or a folder with one sub-folder of videos per class.
        sampling: frames, views, resize, crops and normalization (defaults: MAE-ST's Kinetics test).
        classes: class names or a class-list file; None looks for ``classes.txt`` beside the index.
        batch_size, workers: DataLoader settings (workers: at most the CPU cores here).
        max_samples: evaluate an evenly spaced subset of this size (quick runs); None for all.

    Yields:
        :class:`tokenmerge.experiments.data.Batch` objects: inputs [B, V, 3, T, crop, crop], targets [B], the
        unreadable videos of the batch in ``skipped`` and its videos shorter than one clip in ``notes``.
    """
    dataset = VideoDataset(load_index(source, classes), sampling)
    if max_samples is not None and max_samples < len(dataset):
        step = len(dataset) / max_samples
        dataset = Subset(dataset, [int(i * step) for i in range(max_samples)])
    return DataLoader(dataset, batch_size=batch_size, num_workers=usable_workers(workers), collate_fn=collate_skipping)
