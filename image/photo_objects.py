"""The embedded image task: a small object on a photo background; which photograph is the object from?

Real photographs that ship with scikit-image and scikit-learn (no download) form the classes. Each image
is a crop of one photo (the background) with a small crop of another photo pasted in (the object, 10-14 px
on a 32x32 canvas, so about 3x3 of the 4x4-pixel patches); the label is the object's photo. Training
images use the left part of every photo, evaluation images the right part, so the model must recognise a
photo's content, not memorise pixels.

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

#: Fraction of each photo's width used for training crops; evaluation crops come from the rest.
TRAIN_FRACTION = 0.65
CROP_SIDES = (40, 96)  # crop side in pixels, drawn uniformly, before resizing
OBJECT_SIDES = (10, 14)  # side of the pasted object on the canvas, in pixels

__all__ = [
    "CROP_SIDES",
    "OBJECT_SIDES",
    "PHOTOS",
    "TRAIN_FRACTION",
    "RandomObjects",
    "class_images",
    "load_photo",
    "load_photos",
    "object_on_background",
    "random_crop",
    "write_image_folder",
]


def random_crop(photo: np.ndarray, split: str, rng: np.random.Generator, size: int) -> Image.Image:
    """One square crop from the photo's ``split`` region ("train": left part, "val": right part), resized to size."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val'; got {split!r}.")
    height, width, _ = photo.shape
    boundary = int(width * TRAIN_FRACTION)
    left, right = (0, boundary) if split == "train" else (boundary, width)
    side = int(rng.integers(CROP_SIDES[0], min(CROP_SIDES[1], right - left, height) + 1))
    x0 = int(rng.integers(left, right - side + 1))
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
