"""The embedded image task: a small object on a photo background; which photograph is the object from?

Real photographs that ship with scikit-image and scikit-learn (no download) form the classes. Each image
is a crop of one photo (the background) with a small crop of another photo pasted in (the object, 14-18 px
on a 32x32 canvas, so about 4x4 of the 4x4-pixel patches); the label is the object's photo. Every photo is cut
into 96x96 tiles; a quarter of them, spread over the whole photo in a staggered pattern, are held out for
evaluation (``held_out_tiles``): evaluation crops lie inside one held-out tile, training crops touch none, so
evaluation pixels are never seen in training but come from all over the photo. (An earlier split used the
left 65% for training and the right 35% for evaluation: on several photos the right part shows other things
than the left, and the model scored 74% on training regions but 54% held out.)

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

from tokenmerge.experiments.photos import PHOTOS, load_photo, load_photos

TILE = 96  # side in pixels of the tiles that split every photo into training and evaluation parts
CROP_SIDES = (48, 96)  # crop side in pixels, drawn uniformly, before resizing (fits one held-out tile)
OBJECT_SIDES = (14, 18)  # side of the pasted object on the canvas, in pixels

__all__ = [
    "CROP_SIDES",
    "OBJECT_SIDES",
    "PHOTOS",
    "TILE",
    "RandomObjects",
    "class_images",
    "load_photo",
    "load_photos",
    "object_on_background",
    "random_crop",
    "held_out_tiles",
    "write_image_folder",
]


def held_out_tiles(height: int, width: int) -> np.ndarray:
    """Which ``TILE`` x ``TILE`` tiles of a ``height`` x ``width`` photo are held out: bool [rows, cols].

    Tile (row, col) is held out when ``(col + 2 * row) % 4 == 3``: a quarter of the tiles, staggered from row to
    row so that every part of the photo has held-out tiles. Partial tiles at the edges count as well.
    """
    rows, cols = np.meshgrid(np.arange(-(-height // TILE)), np.arange(-(-width // TILE)), indexing="ij")
    return (cols + 2 * rows) % 4 == 3


def random_crop(
    photo: np.ndarray, split: str, rng: np.random.Generator, size: int, attempts: int = 1000
) -> Image.Image:
    """One square crop of the photo's ``split`` part (see :func:`held_out_tiles`), resized to ``size``.

    The side is drawn from ``CROP_SIDES``. An evaluation ("val") crop lies inside one whole held-out tile; a
    training ("train") crop is placed uniformly among the places that touch no held-out tile.
    """
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val'; got {split!r}.")
    height, width, _ = photo.shape
    held_out = held_out_tiles(height, width)
    side = int(rng.integers(CROP_SIDES[0], min(CROP_SIDES[1], height, width) + 1))
    if split == "val":
        whole = [(r, c) for r, c in zip(*np.nonzero(held_out)) if (r + 1) * TILE <= height and (c + 1) * TILE <= width]
        if not whole:
            raise ValueError(
                f"a {height}x{width} photo has no whole held-out tile: photos for this task need to be at least "
                f"{4 * TILE} px wide and {TILE} px high."
            )
        row, col = whole[int(rng.integers(len(whole)))]
        y0, x0 = row * TILE + int(rng.integers(TILE - side + 1)), col * TILE + int(rng.integers(TILE - side + 1))
    else:
        for _ in range(attempts):
            y0, x0 = int(rng.integers(height - side + 1)), int(rng.integers(width - side + 1))
            if not held_out[y0 // TILE : (y0 + side - 1) // TILE + 1, x0 // TILE : (x0 + side - 1) // TILE + 1].any():
                break
        else:
            raise ValueError(f"found no {side}px training crop outside the held-out tiles of a {height}x{width} photo.")
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
