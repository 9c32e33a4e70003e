"""The embedded photo-object task: deterministic, train and evaluation crops from disjoint stripes."""

import numpy as np
import pytest

from tokenmerge.image.photo_objects import (
    OBJECT_SIDES,
    PHOTOS,
    TILE,
    held_out_tiles,
    load_photo,
    object_on_background,
    random_crop,
    write_image_folder,
)


def test_every_photo_loads_offline_as_rgb():
    for name in PHOTOS:
        photo = load_photo(name)
        assert photo.ndim == 3 and photo.shape[2] == 3 and photo.dtype == np.uint8


def test_a_quarter_of_the_tiles_is_held_out_in_every_row():
    held_out = held_out_tiles(4 * TILE, 8 * TILE)
    assert held_out.shape == (4, 8) and held_out.sum() == 8
    assert held_out[0].tolist() == [False, False, False, True] * 2
    assert held_out[1].tolist() == [False, True, False, False] * 2
    assert held_out_tiles(TILE + 1, TILE).shape == (2, 1)  # partial tiles count


def test_crops_come_from_their_split_tiles_only():
    photo = np.zeros((5 * TILE, 6 * TILE + 20, 3), dtype=np.uint8)
    held_out = np.kron(held_out_tiles(*photo.shape[:2]), np.ones((TILE, TILE), bool))
    photo[held_out[: photo.shape[0], : photo.shape[1]]] = 255  # the held-out tiles are white
    rng = np.random.default_rng(0)
    for _ in range(50):
        assert np.asarray(random_crop(photo, "train", rng, 16)).max() < 128
        assert np.asarray(random_crop(photo, "val", rng, 16)).min() > 128
    with pytest.raises(ValueError, match="split"):
        random_crop(photo, "test", rng, 16)


def test_a_photo_too_small_for_a_held_out_tile_is_refused_clearly():
    with pytest.raises(ValueError, match="no whole held-out tile"):
        random_crop(np.zeros((TILE, 3 * TILE, 3), np.uint8), "val", np.random.default_rng(0), 16)


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
    photos = [np.full((2 * TILE, 4 * TILE, 3), 40 * i, dtype=np.uint8) for i in range(5)]
    rng = np.random.default_rng(0)
    for label in range(5):
        canvas = np.asarray(object_on_background(photos, label, "val", rng, 32))
        values, counts = np.unique(canvas[..., 0], return_counts=True)
        assert 40 * label in values and values.size == 2
        object_pixels = counts[list(values).index(40 * label)]
        assert OBJECT_SIDES[0] ** 2 <= object_pixels <= OBJECT_SIDES[1] ** 2
