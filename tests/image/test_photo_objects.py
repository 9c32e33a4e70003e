"""The embedded photo-object task: deterministic, train and evaluation crops from disjoint stripes."""

import numpy as np
import pytest

from tokenmerge.image.photo_objects import (
    OBJECT_SIDES,
    PHOTOS,
    STRIPE_WIDTH,
    load_photo,
    object_on_background,
    random_crop,
    split_runs,
    write_image_folder,
)


def test_every_photo_loads_offline_as_rgb():
    for name in PHOTOS:
        photo = load_photo(name)
        assert photo.ndim == 3 and photo.shape[2] == 3 and photo.dtype == np.uint8


def test_every_fourth_stripe_is_held_out_and_the_splits_cover_the_photo():
    assert split_runs(600, "val") == [(192, 256), (448, 512)]
    assert split_runs(600, "train") == [(0, 192), (256, 448), (512, 600)]
    for width in (300, 512, 641):
        columns = [
            c for split in ("train", "val") for start, stop in split_runs(width, split) for c in range(start, stop)
        ]
        assert sorted(columns) == list(range(width))
    with pytest.raises(ValueError, match="split"):
        split_runs(300, "test")


def test_crops_come_from_their_split_stripes_only():
    photo = np.zeros((200, 640, 3), dtype=np.uint8)
    for start, stop in split_runs(640, "val"):
        photo[:, start:stop] = 255  # the held-out stripes are white
    rng = np.random.default_rng(0)
    for _ in range(50):
        assert np.asarray(random_crop(photo, "train", rng, 16)).max() < 128
        assert np.asarray(random_crop(photo, "val", rng, 16)).min() > 128


def test_a_photo_too_narrow_for_a_held_out_stripe_is_refused_clearly():
    with pytest.raises(ValueError, match="at least 256 px wide"):
        random_crop(np.zeros((100, 3 * STRIPE_WIDTH, 3), np.uint8), "val", np.random.default_rng(0), 16)


def test_every_bundled_photo_has_room_for_crops_of_both_splits():
    rng = np.random.default_rng(0)
    for name in PHOTOS:
        for split in ("train", "val"):
            assert random_crop(load_photo(name), split, rng, 8).size == (8, 8)


def test_image_folder_is_deterministic(tmp_path):
    a = write_image_folder(tmp_path / "a", per_class=2, seed=3)
    b = write_image_folder(tmp_path / "b", per_class=2, seed=3)
    files = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    assert len(files) == 2 * len(PHOTOS)
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


def test_object_comes_from_the_labelled_photo_and_background_from_another():
    # Flat-colour "photos": the object's colour identifies its photo, the rest of the canvas another one.
    photos = [np.full((120, 320, 3), 40 * i, dtype=np.uint8) for i in range(5)]
    rng = np.random.default_rng(0)
    for label in range(5):
        canvas = np.asarray(object_on_background(photos, label, "val", rng, 32))
        values, counts = np.unique(canvas[..., 0], return_counts=True)
        assert 40 * label in values and values.size == 2
        object_pixels = counts[list(values).index(40 * label)]
        assert OBJECT_SIDES[0] ** 2 <= object_pixels <= OBJECT_SIDES[1] ** 2
