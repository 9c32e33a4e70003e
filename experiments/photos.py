"""Real photographs that ship offline with scikit-image and scikit-learn: the source of every embedded task.

The registry maps a name to a loader; nothing is read (and neither library is imported) until a photo is asked
for, so ``tokenmerge.core`` keeps importing only torch and numpy. The image task
(``tokenmerge.image.photo_objects``) and the video task (``tokenmerge.video.moving_objects``) both draw on it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return getattr(skimage.data, name)()

    return load


def _sklearn(filename: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(filename)

    return load


#: Loader of every bundled photograph, by name.
PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    **{
        name: _skimage(name)
        for name in (
            "astronaut",
            "brick",
            "camera",
            "cell",
            "chelsea",
            "clock",
            "coffee",
            "coins",
            "colorwheel",
            "grass",
            "gravel",
            "hubble_deep_field",
            "immunohistochemistry",
            "logo",
            "moon",
            "page",
            "retina",
            "rocket",
            "text",
        )
    },
    "china": _sklearn("china.jpg"),
    "flower": _sklearn("flower.jpg"),
}


def load_photo(name: str) -> np.ndarray:
    """The photo ``name`` as [H, W, 3] uint8 RGB (grey photos repeated over 3 channels, alpha dropped)."""
    if name not in PHOTOS:
        raise KeyError(f"Unknown photo {name!r}; choose one of {sorted(PHOTOS)}.")
    image = np.asarray(PHOTOS[name]())
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    return np.ascontiguousarray(image[..., :3]).astype(np.uint8)


def load_photos() -> dict[str, np.ndarray]:
    """Every photo by name, in sorted name order (the class order of the image task's ``ImageFolder``)."""
    return {name: load_photo(name) for name in sorted(PHOTOS)}
