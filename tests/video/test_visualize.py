"""Frame-grid merge pictures: groups keep one colour across frames; scopes differ; the user's patch survives;
captions; the old name still draws, with a warning."""

import numpy as np
import pytest
import torch

from tokenmerge.experiments.visualize import render_groups
from tokenmerge.video import SpatiotemporalViT, apply_patch
from tokenmerge.video.visualize import visualize_clip_merges, visualize_merges

TINY = dict(num_frames=4, t_patch_size=2, img_size=16, patch_size=4, embed_dim=32, depth=2, num_heads=2, num_classes=3)


def test_a_group_spanning_frames_gets_one_colour():
    frames = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    frames[0], frames[1] = 100, 200
    groups = np.zeros((2, 2, 2), dtype=int)  # one group over both frames
    out = render_groups(frames, groups, border=False)
    assert (out == 150).all()


def test_clip_picture_size_and_patch_restored():
    torch.manual_seed(0)
    model = SpatiotemporalViT(**TINY).eval()
    handle = apply_patch(model, r=2)
    clip = torch.rand(3, 4, 16, 16) * 2 - 1
    picture = visualize_merges(model, clip, r=6, labels=False, frame_height=32)
    assert picture.size == (4 * 32, 2 * 32) and handle.active and handle.config.r == 2
    spacetime = np.asarray(visualize_merges(model, clip, r=6, labels=False, frame_height=16))
    frame = np.asarray(visualize_merges(model, clip, r=6, labels=False, merge_scope="frame", frame_height=16))
    assert spacetime.shape == frame.shape and not np.array_equal(spacetime, frame)


def test_captions_name_r_scope_tokens_and_predicted_class(monkeypatch):
    seen = {}

    def capture(panels, captions, title=None, **kwargs):
        seen.update(captions=captions, title=title)
        return panels[0]

    monkeypatch.setattr("tokenmerge.video.visualize.label_panels", capture)
    torch.manual_seed(0)
    model = SpatiotemporalViT(**TINY).eval()
    clip = torch.rand(3, 4, 16, 16) * 2 - 1
    visualize_merges(model, clip, r=6, class_names=["cat", "dog", "bird"], merge_scope="frame")
    (caption,) = seen["captions"]
    assert seen["title"] == "SpatiotemporalViT"  # the default: the model's class name
    assert caption.startswith("ToMe r=6, frame scope: 33 -> 21 tokens; predicts ")  # 2 blocks of 6
    assert caption.split()[-1] in ("cat", "dog", "bird")
    visualize_merges(model, clip, r=(6, -1.0), method="random_drop", title="")
    assert seen["title"] == "" and seen["captions"][0].startswith("random drop r=[6, -1.0], spacetime scope: 33 -> ")
    assert seen["captions"][0].split()[-2:] in (["class", "0"], ["class", "1"], ["class", "2"])


def test_captions_sit_above_the_grid():
    torch.manual_seed(0)
    model = SpatiotemporalViT(**TINY).eval()
    clip = torch.rand(3, 4, 16, 16) * 2 - 1
    grid = np.asarray(visualize_merges(model, clip, r=6, labels=False, frame_height=32))
    labelled = np.asarray(visualize_merges(model, clip, r=6, frame_height=32))
    assert labelled.shape[1] == grid.shape[1] and labelled.shape[0] > grid.shape[0]
    assert np.array_equal(labelled[-grid.shape[0] :], grid)


def test_the_old_name_warns_and_still_draws_the_grid():
    torch.manual_seed(0)
    model = SpatiotemporalViT(**TINY).eval()
    clip = torch.rand(3, 4, 16, 16) * 2 - 1
    with pytest.warns(
        DeprecationWarning, match=r"visualize_clip_merges.*use tokenmerge\.video\.visualize\.visualize_merges"
    ):
        old = visualize_clip_merges(model, clip, 6, merge_scope="frame", frame_height=32)  # r positional, as it was
    new = visualize_merges(model, clip, r=6, labels=False, merge_scope="frame", frame_height=32)
    assert old.size == (4 * 32, 2 * 32) and np.array_equal(np.asarray(old), np.asarray(new))


def _has_thick_white(panel: np.ndarray) -> bool:
    """Whether any 2 x 2 block of the panel is all white (borders 1 pixel wide never fill one)."""
    white = (panel == 255).all(-1)
    return bool((white[:-1, :-1] & white[1:, :-1] & white[:-1, 1:] & white[1:, 1:]).any())


def test_borders_stay_one_pixel_wide_when_scaled():
    torch.manual_seed(0)
    model = SpatiotemporalViT(**TINY).eval()
    clip = torch.rand(3, 4, 16, 16) * 0.5  # no white pixels in the clip itself
    picture = np.asarray(visualize_merges(model, clip, r=6, labels=False, frame_height=64))
    merged_row = picture[64:]
    assert (merged_row == 255).all(-1).any() and not _has_thick_white(merged_row)
