"""The embedded image task: a small object on a photo background; which photograph is the object from?

Real photographs that ship with scikit-image and scikit-learn (no download) form the classes. Each image
is a crop of one photo (the background) with a small crop of another photo pasted in (the object, 10-14 px
on a 32x32 canvas, so about 3x3 of the 4x4-pixel patches); the label is the object's photo. Every photo is cut
into vertical stripes 64 px wide; every fourth stripe is held out for evaluation and the rest is for training
(``split_runs``), so evaluation crops are pixels the model never saw, drawn from all over the photo. (An
earlier split used the left 65% for training and the right 35% for evaluation: on several photos the right
part shows different things than the left, and the model scored 74% on training regions but 54% held out.)

Why this task: classifying plain crops ("which photo is this crop from") was measured here to stay flat
under merging down to 3 tokens (88.0% at r=0, 87.8% at r=16, and random dropping 87.2%): a texture is an
average, and averaging tokens keeps it. With a small object, the information sits in a few tokens, as in
natural images: merging redundant background costs little, merging or dropping the object's tokens costs
accuracy, so the curve is flat at small r and falls at large r, and random dropping falls sooner.

The evaluation split is written as a torchvision ``ImageFolder`` (``<root>/<class>/<i>.png``), so the
embedded default goes through the same loader and transforms as ImageNet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from tokenmerge.core.photos import PHOTOS, load_photo, load_photos

STRIPE_WIDTH = 64  # width in pixels of the vertical stripes that split every photo
HELD_OUT_EVERY = 4  # stripes 3, 7, 11, ... are the evaluation split, the rest the training split
CROP_SIDES = (40, 64)  # crop side in pixels, drawn uniformly, before resizing (fits one held-out stripe)
OBJECT_SIDES = (10, 14)  # side of the pasted object on the canvas, in pixels

__all__ = [
    "CROP_SIDES",
    "HELD_OUT_EVERY",
    "OBJECT_SIDES",
    "PHOTOS",
    "STRIPE_WIDTH",
    "RandomObjects",
    "class_images",
    "load_photo",
    "load_photos",
    "object_on_background",
    "random_crop",
    "split_runs",
    "write_image_folder",
]


def split_runs(width: int, split: str) -> list[tuple[int, int]]:
    """The column ranges ``[start, stop)`` of a photo ``width`` px wide that belong to ``split``.

    Stripes of ``STRIPE_WIDTH`` columns; stripe k is held out ("val") when ``k % HELD_OUT_EVERY`` is the last
    residue, else it is "train". Neighbouring stripes of one split join into one run, so a training crop may
    span several stripes but never touches a held-out column.
    """
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val'; got {split!r}.")
    runs: list[tuple[int, int]] = []
    for start in range(0, width, STRIPE_WIDTH):
        held_out = (start // STRIPE_WIDTH) % HELD_OUT_EVERY == HELD_OUT_EVERY - 1
        if held_out != (split == "val"):
            continue
        stop = min(start + STRIPE_WIDTH, width)
        if runs and runs[-1][1] == start:
            runs[-1] = (runs[-1][0], stop)
        else:
            runs.append((start, stop))
    return runs


def random_crop(photo: np.ndarray, split: str, rng: np.random.Generator, size: int) -> Image.Image:
    """One square crop from the photo's ``split`` stripes (see ``split_runs``), resized to ``size``.

    The crop side is drawn from ``CROP_SIDES`` and its position uniformly over every place it fits.
    """
    height, width, _ = photo.shape
    side = int(rng.integers(CROP_SIDES[0], min(CROP_SIDES[1], height) + 1))
    runs = [(start, stop) for start, stop in split_runs(width, split) if stop - start >= side]
    if not runs:
        raise ValueError(
            f"a {height}x{width} photo has no {split!r} stripe {side} px wide; photos for this task need to be "
            f"at least {HELD_OUT_EVERY * STRIPE_WIDTH} px wide and {CROP_SIDES[1]} px high."
        )
    places = np.array([stop - start - side + 1 for start, stop in runs])
    run = int(rng.choice(len(runs), p=places / places.sum()))
    x0 = runs[run][0] + int(rng.integers(places[run]))
    y0 = int(rng.integers(0, height - side + 1))
    crop = Image.fromarray(photo[y0 : y0 + side, x0 : x0 + side])
    return crop.resize((size, size), Image.Resampling.BICUBIC)


def object_on_background(
    photos: list[np.ndarray], label: int, split: str, rng: np.random.Generator, size: int
) -> Image.Image:
    """A ``size`` x ``size`` crop of a random other photo with a small crop of ``photos[label]`` pasted in."""
    background_index = int(rng.integers(len(photos) - 1))
    background_index += background_index >= label  # any photo but the object's
    canvas = random_crop(photos[background_index], split, rng, size)
    side = int(rng.integers(OBJECT_SIDES[0], OBJECT_SIDES[1] + 1))
    obj = random_crop(photos[label], split, rng, side)
    canvas.paste(obj, (int(rng.integers(0, size - side + 1)), int(rng.integers(0, size - side + 1))))
    return canvas


def class_images(
    photos: list[np.ndarray], label: int, split: str, count: int, size: int, seed: int
) -> Iterator[Image.Image]:
    """``count`` images of class ``label`` from one random stream per (seed, class), so classes are independent."""
    rng = np.random.default_rng([seed, label])
    for _ in range(count):
        yield object_on_background(photos, label, split, rng, size)


def write_image_folder(
    root: str | Path, split: str = "val", per_class: int = 50, size: int = 32, seed: int = 0
) -> Path:
    """Write ``per_class`` images of every class as ``<root>/<class>/<i>.png``; deterministic for a seed.

    Existing complete folders are reused. Returns ``root``.
    """
    root = Path(root)
    photos = load_photos()
    images = list(photos.values())
    for index, name in enumerate(photos):
        folder = root / name
        if folder.is_dir() and len(list(folder.glob("*.png"))) == per_class:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(class_images(images, index, split, per_class, size, seed)):
            image.save(folder / f"{i:04d}.png")
    return root


class RandomObjects(Dataset):
    """Fresh random training images: item i is (image tensor, class), deterministic in (seed, i).

    Args:
        length: items per epoch.
        size: output side in pixels.
        transform: maps a PIL image to a tensor (e.g. timm's train transform).
        seed: base seed.
    """

    def __init__(self, length: int, size: int, transform: Callable[[Image.Image], torch.Tensor], seed: int = 0):
        self.photos = list(load_photos().values())
        self.length, self.size, self.transform, self.seed = length, size, transform, seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        rng = np.random.default_rng([self.seed, index])
        label = index % len(self.photos)
        return self.transform(object_on_background(self.photos, label, "train", rng, self.size)), label
