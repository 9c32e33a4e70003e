"""The embedded photo-crop task: deterministic, train and evaluation crops from disjoint regions."""

import numpy as np
import pytest

from tokenmerge.image.photo_objects import (
    OBJECT_SIDES,
    PHOTOS,
    TRAIN_FRACTION,
    load_photo,
    object_on_background,
    random_crop,
    write_image_folder,
)


def test_every_photo_loads_offline_as_rgb():
    for name in PHOTOS:
        photo = load_photo(name)
        assert photo.ndim == 3 and photo.shape[2] == 3 and photo.dtype == np.uint8


def test_crops_come_from_their_split_region():
    photo = np.zeros((200, 300, 3), dtype=np.uint8)
    photo[:, int(300 * TRAIN_FRACTION) :] = 255  # the validation region is white
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert np.asarray(random_crop(photo, "train", rng, 16)).max() < 128
        assert np.asarray(random_crop(photo, "val", rng, 16)).min() > 128
    with pytest.raises(ValueError, match="split"):
        random_crop(photo, "test", rng, 16)


def test_image_folder_is_deterministic(tmp_path):
    a = write_image_folder(tmp_path / "a", per_class=2, seed=3)
    b = write_image_folder(tmp_path / "b", per_class=2, seed=3)
    files = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    assert len(files) == 2 * len(PHOTOS)
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


def test_object_comes_from_the_labelled_photo_and_background_from_another():
    # Flat-colour "photos": the object's colour identifies its photo, the rest of the canvas another one.
    photos = [np.full((120, 160, 3), 40 * i, dtype=np.uint8) for i in range(5)]
    rng = np.random.default_rng(0)
    for label in range(5):
        canvas = np.asarray(object_on_background(photos, label, "val", rng, 32))
        values, counts = np.unique(canvas[..., 0], return_counts=True)
        assert 40 * label in values and values.size == 2
        object_pixels = counts[list(values).index(40 * label)]
        assert OBJECT_SIDES[0] ** 2 <= object_pixels <= OBJECT_SIDES[1] ** 2
