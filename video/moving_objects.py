"""The embedded video task: which of two objects moves first? Clips made from real photographs, offline.

Each clip has 8 frames of 32 x 32 pixels: a background (a crop of one texture or scene photograph bundled with
scikit-image) and two small objects (10-13 px thumbnails of two of 10 object photographs, each thumbnail showing
80-100% of its photograph's central square, a new framing every clip). In the first half of the clip object A
moves (2-3 px per frame in a random direction) while object B stands still; in the second half B moves and A
stands still. The label is A's photograph.

Why this task needs time: every single frame shows both objects, so one frame cannot tell which moved first
(at best a coin flip between the two visible objects, 50%), and shuffling the frames destroys the order. Why it
suits merging: the information sits in the few tokens of two small objects on a redundant background, and
the answer needs the objects' tokens kept apart over time, so merging has something to lose and merging the
right tokens (ToMe) should beat dropping random ones.

The objects are recognisable by design (the whole photograph, shrunk), so what the model must learn is the
order of the motion. Evaluation clips are new draws, with backgrounds cropped from the right 35% of each
background photograph (training clips use the left 65%), at positions, directions, speeds and framings not seen
in training. Clips are normalized with mean = std = 0.5.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from tokenmerge.experiments.photos import load_photo

from .data import ClipSampling

#: Object classes: visually distinct photographs bundled with scikit-image.
CLASSES = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "camera",
    "coins",
    "hubble_deep_field",
    "immunohistochemistry",
    "colorwheel",
    "text",
)
#: Background-only photographs (textures and scenes), besides the object classes.
BACKGROUNDS = ("brick", "grass", "gravel", "moon", "retina", "page", "cell", "clock")
FRAMES, SIZE = 8, 32
OBJECT_SIDES = (10, 13)
OBJECT_FRAMING = (0.8, 1.0)  # the fraction of its photograph's central square an object's thumbnail shows
SPEEDS = (2, 3)  # pixels per frame
TRAIN_FRACTION = 0.65
MEAN = STD = 0.5
#: How :func:`tokenmerge.video.data.build_video_loader` reads written clips back: one view of every frame, as made.
SAMPLING = ClipSampling(
    num_frames=FRAMES,
    sampling_rate=1,
    target_fps=None,
    num_temporal_views=1,
    num_spatial_crops=1,
    short_side=SIZE,
    crop_size=SIZE,
    mean=(MEAN,) * 3,
    std=(STD,) * 3,
)


def _crop(photo: np.ndarray, split: str, rng: np.random.Generator, side: int, out: int) -> np.ndarray:
    height, width, _ = photo.shape
    boundary = int(width * TRAIN_FRACTION)
    left, right = (0, boundary) if split == "train" else (boundary, width)
    side = min(side, right - left, height)
    x0, y0 = int(rng.integers(left, right - side + 1)), int(rng.integers(0, height - side + 1))
    crop = Image.fromarray(photo[y0 : y0 + side, x0 : x0 + side]).resize((out, out), Image.Resampling.BICUBIC)
    return np.asarray(crop)


def _thumbnail(photo: np.ndarray, rng: np.random.Generator, out: int) -> np.ndarray:
    """[out, out, 3]: a random 80-100% window of the photograph's central square, shrunk (the same in both splits)."""
    height, width, _ = photo.shape
    square = min(height, width)
    side = int(square * rng.uniform(*OBJECT_FRAMING))
    y0 = (height - square) // 2 + int(rng.integers(0, square - side + 1))
    x0 = (width - square) // 2 + int(rng.integers(0, square - side + 1))
    crop = Image.fromarray(photo[y0 : y0 + side, x0 : x0 + side]).resize((out, out), Image.Resampling.BICUBIC)
    return np.asarray(crop)


def _trajectory(rng: np.random.Generator, side: int, moving: range) -> list[tuple[int, int]]:
    """Top-left corner per frame: still outside ``moving``, a straight line inside it, always in the frame."""
    angle = rng.uniform(0, 2 * np.pi)
    speed = int(rng.integers(SPEEDS[0], SPEEDS[1] + 1))
    step = np.array([np.cos(angle), np.sin(angle)]) * speed
    travel = step * len(moving)
    low = np.maximum(0, -travel)
    high = np.minimum(SIZE - side, SIZE - side - travel)
    start = np.array([rng.uniform(lo, max(lo, hi)) for lo, hi in zip(low, high)])
    positions, offset = [], np.zeros(2)
    for t in range(FRAMES):
        if t in moving:
            offset = offset + step
        x, y = np.clip(np.round(start + offset), 0, SIZE - side).astype(int)
        positions.append((int(x), int(y)))
    return positions


def make_clip(photos: dict[str, np.ndarray], label: int, split: str, rng: np.random.Generator) -> np.ndarray:
    """One clip [T, S, S, 3] uint8 in which object ``CLASSES[label]`` moves first.

    Args:
        photos: every photograph of :data:`CLASSES` and :data:`BACKGROUNDS` by name (see :func:`load_photos`).
        label: index of the first mover in :data:`CLASSES`.
        split: "train" (backgrounds from the left part of their photo) or "val" (the right part).
        rng: the random stream.
    """
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val'; got {split!r}.")
    others = [i for i in range(len(CLASSES)) if i != label]
    second = int(rng.choice(others))
    background = _crop(photos[str(rng.choice(BACKGROUNDS))], split, rng, int(rng.integers(48, 128)), SIZE)
    objects = []
    for index, moving in ((label, range(1, FRAMES // 2)), (second, range(FRAMES // 2 + 1, FRAMES))):
        side = int(rng.integers(OBJECT_SIDES[0], OBJECT_SIDES[1] + 1))
        patch = _thumbnail(photos[CLASSES[index]], rng, side)
        objects.append((patch, _trajectory(rng, side, moving)))
    if rng.random() < 0.5:  # which object is drawn on top must not give the answer away
        objects.reverse()
    clip = np.repeat(background[None], FRAMES, axis=0)
    for patch, positions in objects:
        side = patch.shape[0]
        for t, (x, y) in enumerate(positions):
            clip[t, y : y + side, x : x + side] = patch
    return clip


def load_photos() -> dict[str, np.ndarray]:
    """Every photograph the task uses, by name."""
    return {name: load_photo(name) for name in (*CLASSES, *BACKGROUNDS)}


def to_tensor(clip: np.ndarray) -> torch.Tensor:
    """[T, H, W, 3] uint8 -> [3, T, H, W] float, normalized with :data:`MEAN` and :data:`STD`."""
    return (torch.from_numpy(clip).permute(3, 0, 1, 2).float() / 255 - MEAN) / STD


class RandomClips(Dataset):
    """Fresh random training clips: item i is (clip [3, T, S, S], label), deterministic in (seed, i); labels cycle."""

    def __init__(self, length: int, seed: int = 0, split: str = "train"):
        self.photos, self.length, self.seed, self.split = load_photos(), length, seed, split

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        label = index % len(CLASSES)
        clip = make_clip(self.photos, label, self.split, np.random.default_rng([self.seed, index]))
        return to_tensor(clip), label


def validation_clips(per_class: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed batch of held-out clips [K * per_class, 3, T, S, S] and labels, for training reports."""
    data = RandomClips(per_class * len(CLASSES), seed=seed, split="val")
    clips, labels = zip(*(data[i] for i in range(len(data))))
    return torch.stack(clips), torch.tensor(labels)


def write_video_dataset(root: str | Path, split: str = "val", per_class: int = 30, seed: int = 0, fps: int = 8) -> Path:
    """Write clips as H.264 mp4 files plus ``<root>/<split>.csv`` (``path,label``) and ``<root>/classes.txt``.

    Deterministic for a seed; a complete existing dataset is reused. Returns ``root``.
    """
    import av

    root = Path(root)
    index_path = root / f"{split}.csv"
    if index_path.is_file() and len(index_path.read_text().splitlines()) == per_class * len(CLASSES):
        return root
    (root / "clips").mkdir(parents=True, exist_ok=True)
    photos, rows = load_photos(), []
    for label, name in enumerate(CLASSES):
        rng = np.random.default_rng([seed, label])
        for i in range(per_class):
            path = Path("clips") / f"{name}_{i:03d}.mp4"
            with av.open(str(root / path), mode="w") as container:
                stream = container.add_stream("libx264", rate=fps, options={"crf": "10", "preset": "veryfast"})
                stream.width = stream.height = SIZE
                stream.pix_fmt = "yuv444p"
                for frame in make_clip(photos, label, split, rng):
                    container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
                container.mux(stream.encode())
            rows.append((str(path), label))
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    with index_path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return root
