"""The embedded video task: determinism, labels, and object A moving only in the first half, B only in the second."""

import numpy as np
import pytest
import torch

from tokenmerge.video.data import build_video_loader
from tokenmerge.video.moving_objects import (
    BACKGROUNDS,
    CLASSES,
    FRAMES,
    SAMPLING,
    SIZE,
    STD,
    RandomClips,
    load_photos,
    make_clip,
    to_tensor,
    write_video_dataset,
)
from tokenmerge.video.train_embedded import shuffled_frames, single_frame


@pytest.fixture(scope="module")
def photos():
    return load_photos()


def test_clips_are_deterministic_and_shaped(photos):
    a = make_clip(photos, 3, "val", np.random.default_rng(7))
    b = make_clip(photos, 3, "val", np.random.default_rng(7))
    assert a.shape == (FRAMES, SIZE, SIZE, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    clip, label = RandomClips(25, seed=2)[13]
    assert clip.shape == (3, FRAMES, SIZE, SIZE) and label == 13 % len(CLASSES)
    assert torch.equal(clip, RandomClips(25, seed=2)[13][0]) and -1 <= clip.min() and clip.max() <= 1
    with pytest.raises(ValueError, match="split"):
        make_clip(photos, 0, "test", np.random.default_rng(0))


def test_motion_happens_in_the_right_halves(photos):
    """Frames change only while an object moves: transitions inside each half; the halves differ in where."""
    for seed in range(10):
        clip = make_clip(photos, seed % len(CLASSES), "train", np.random.default_rng(seed)).astype(int)
        changed = [np.abs(clip[t + 1] - clip[t]).sum(-1) > 0 for t in range(FRAMES - 1)]
        assert not changed[FRAMES // 2 - 1].any()  # frame 3 -> 4: nothing moves between the halves
        first = np.logical_or.reduce(changed[: FRAMES // 2 - 1])
        second = np.logical_or.reduce(changed[FRAMES // 2 :])
        assert first.any() and second.any()
        assert first.sum() < 0.5 * SIZE * SIZE and second.sum() < 0.5 * SIZE * SIZE  # small objects, not the scene


def test_time_controls_keep_content_and_destroy_order():
    clips = to_tensor(np.random.default_rng(0).integers(0, 255, (FRAMES, SIZE, SIZE, 3), dtype=np.uint8))[None]
    g = torch.Generator().manual_seed(0)
    single = single_frame(clips.repeat(3, 1, 1, 1, 1), g)
    assert all(torch.equal(single[:, :, t], single[:, :, 0]) for t in range(FRAMES))
    shuffled = shuffled_frames(clips, g)
    assert not torch.equal(shuffled, clips)
    assert torch.equal(shuffled.sum(2), clips.sum(2)) or torch.allclose(shuffled.sum(2), clips.sum(2), atol=1e-4)


def test_the_labelled_object_moves_first():
    """Flat-colour photographs: every pixel that changes in the first half shows A before or after, B in the second."""
    names = [*CLASSES, *BACKGROUNDS]
    colours = {name: 10 + 12 * i for i, name in enumerate(names)}
    flat = {name: np.full((300, 400, 3), colours[name], dtype=np.uint8) for name in names}
    for seed in range(10):
        label = seed % len(CLASSES)
        clip = make_clip(flat, label, "val", np.random.default_rng(seed))[..., 0].astype(int)
        background = np.bincount(clip[0].ravel()).argmax()  # the objects cover well under half the frame
        movers = []
        for half in (range(FRAMES // 2 - 1), range(FRAMES // 2, FRAMES - 1)):
            before, after = clip[list(half)], clip[[t + 1 for t in half]]
            changed = before != after
            assert changed.any()
            shows = {n for n, c in colours.items() if np.all((before[changed] == c) | (after[changed] == c))}
            movers.append({n for n in shows if colours[n] != background})
        assert movers[0] == {CLASSES[label]}
        assert len(movers[1]) == 1 and movers[1] <= set(CLASSES) - movers[0]


def test_written_clips_decode_close_to_the_originals(tmp_path, photos):
    root = write_video_dataset(tmp_path, per_class=1, seed=0)
    assert (root / "classes.txt").read_text().split() == list(CLASSES)
    rows = [line.split(",") for line in (root / "val.csv").read_text().splitlines()]
    assert [int(label) for _, label in rows] == list(range(len(CLASSES)))
    batch = next(iter(build_video_loader(root / "val.csv", sampling=SAMPLING, batch_size=len(CLASSES), workers=0)))
    assert batch.inputs.shape == (len(CLASSES), 1, 3, FRAMES, SIZE, SIZE) and not batch.skipped
    for label in range(len(CLASSES)):
        original = to_tensor(make_clip(photos, label, "val", np.random.default_rng([0, label])))
        error = ((batch.inputs[label, 0] - original) * STD * 255).abs()  # in pixel levels
        assert error.mean() < 3 and batch.targets[label] == label
    stamp = (root / "val.csv").stat().st_mtime_ns
    assert write_video_dataset(tmp_path, per_class=1, seed=0) == root  # a complete dataset is reused
    assert (root / "val.csv").stat().st_mtime_ns == stamp
