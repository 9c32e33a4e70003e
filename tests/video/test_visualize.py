"""Frame-grid merge pictures: groups keep one colour across frames; scopes differ; the user's patch survives;
every frame and time slice is labelled; groups spanning time slices are counted and outlined; captions; the old
name still draws, with a warning."""

import re

import numpy as np
import pytest
import torch

from tests.picture_helpers import ink_runs
from tokenmerge.experiments.visualize import HIGHLIGHT, group_map, render_groups
from tokenmerge.video import SpatiotemporalViT, apply_patch
from tokenmerge.video.visualize import frame_labels, spanning_groups, visualize_clip_merges, visualize_merges

TINY = dict(num_frames=4, t_patch_size=2, img_size=16, patch_size=4, embed_dim=32, depth=2, num_heads=2, num_classes=3)


def still_clip():
    """A clip [3, 4, 16, 16] whose 4 frames are one random frame: its tokens repeat over time."""
    return (torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1).repeat(1, 4, 1, 1)


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


def captured_captions(monkeypatch) -> list[str]:
    """The captions ``visualize_merges`` passes to ``label_panels``, one per call (the panel is returned as is)."""
    seen: list[str] = []

    def capture(panels, captions, title=None, **kwargs):
        seen.extend(captions)
        return panels[0]

    monkeypatch.setattr("tokenmerge.video.visualize.label_panels", capture)
    return seen


def test_spanning_groups_of_a_hand_made_source_map():
    # 1 class token + 2 time slices of 1 x 2 patches (p0 p1 | p2 p3); tokens: [cls, {p0, p2}, {p1}, {p3}]
    across = torch.tensor([[1, 0, 0, 0, 0], [0, 1, 0, 1, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 1]], dtype=torch.float32)
    groups = group_map(across, 1, (2, 1, 2))
    assert groups.tolist() == [[[1, 2]], [[1, 3]]] and spanning_groups(groups).tolist() == [1]
    # the same patches merged within their slices, as in the frame scope: [cls, {p0, p1}, {p2}, {p3}]
    within = torch.tensor([[1, 0, 0, 0, 0], [0, 1, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1]], dtype=torch.float32)
    assert spanning_groups(group_map(within, 1, (2, 1, 2))).tolist() == []
    three = np.array([[[0, 1]], [[2, 1]], [[2, 0]]])  # 0 in slices 0 and 2, 2 in slices 1 and 2, 1 in slices 0, 1
    assert spanning_groups(three).tolist() == [0, 1, 2] and spanning_groups(three[:1]).tolist() == []


def test_spacetime_groups_span_time_slices_and_frame_groups_never(monkeypatch):
    torch.manual_seed(0)
    model = SpatiotemporalViT(**TINY).eval()
    captions = captured_captions(monkeypatch)
    counts = {}
    for scope in ("spacetime", "frame"):
        grid = np.asarray(visualize_merges(model, still_clip(), r=6, merge_scope=scope, frame_height=32))
        spanning, groups = map(int, re.search(r"spanning several time slices: (\d+) of (\d+)", captions[-1]).groups())
        counts[scope] = spanning, groups, bool((grid == HIGHLIGHT).all(-1).any())
    assert counts["frame"] == (0, 20, False)  # 33 - 12 tokens: the class token and 20 groups
    spanning, groups, outlined = counts["spacetime"]
    assert 0 < spanning <= groups == 20 and outlined
    assert "(outlined in cyan)" in captions[0] and "frame scope merges within a time slice only" in captions[1]
    assert all("tubelet of 2 frames, which share their groups" in caption for caption in captions)
    plain = np.asarray(visualize_merges(model, still_clip(), r=6, labels=False, highlight=False, frame_height=32))
    assert not (plain == HIGHLIGHT).all(-1).any()


def test_highlighted_outline_covers_the_edge_of_each_spanning_group_only():
    frames = np.full((2, 12, 12, 3), 100, np.uint8)
    groups = np.array([[[0, 1], [2, 2]], [[0, 3], [4, 4]]])  # 6 x 6-pixel cells; group 0 is in both frames
    out = render_groups(frames, groups, border=False, highlight=np.array([0]), highlight_width=2)
    expected = np.zeros((2, 12, 12), dtype=bool)
    expected[:, :6, :6] = True
    expected[:, 2:4, 2:4] = False  # 2 pixels deep inside the cell; the rest keeps the group's colour
    assert np.array_equal((out == HIGHLIGHT).all(-1), expected) and (out[~expected] == 100).all()
    both = render_groups(frames, groups, border=False, highlight=np.array([0, 1, 2]), highlight_width=2)
    assert (both[0, 3, 4:8] == HIGHLIGHT).all() and (both[0, 4:8, 3] == HIGHLIGHT).all()  # outlined neighbours:
    assert (both[0, 3, 2:4] == 100).all() and (both[0, 2:4, 3] == 100).all()  # each keeps its side of the edge


def test_every_frame_and_time_slice_is_labelled():
    band = (np.asarray(frame_labels(8, 2, 128)) < 128).all(-1)  # dark pixels: text and rules
    lines = ink_runs(band.any(1), gap=3)
    assert band.shape[1] == 8 * 128 and len(lines) == 3  # slice labels, their rules, frame labels
    (top, bottom), rule, (first, last) = lines
    slice_row, frame_row = band[top : bottom + 1].any(0), band[first : last + 1].any(0)
    assert [(a + b) // 2 // 256 for a, b in ink_runs(slice_row, gap=8)] == [0, 1, 2, 3]  # one label per time slice
    assert [(a + b) // 2 // 128 for a, b in ink_runs(frame_row, gap=8)] == list(range(8))  # one label per frame
    assert len(ink_runs(band[rule[0] : rule[1] + 1].any(0), gap=2)) == 4  # a rule under each slice's 2 frames
    single = (np.asarray(frame_labels(4, 1, 64)) < 128).all(-1)
    assert len(ink_runs(single.any(1), gap=3)) == 1  # frames are time slices: no slice labels
    columns = np.flatnonzero((np.asarray(frame_labels(4, 1, 24)) < 128).all(-1).any(0))
    assert (
        set(columns // 24) == {0, 1, 2, 3} and (0 < columns % 24).all() and (columns % 24 < 23).all()
    )  # the font shrinks to fit each frame


def test_labelled_picture_puts_the_frame_labels_between_caption_and_grid():
    torch.manual_seed(0)
    model = SpatiotemporalViT(**TINY).eval()
    clip = torch.rand(3, 4, 16, 16) * 2 - 1
    grid = np.asarray(visualize_merges(model, clip, r=6, labels=False))
    labelled = np.asarray(visualize_merges(model, clip, r=6))
    band = np.asarray(frame_labels(4, 2, 128))
    assert grid.shape[:2] == (2 * 128, 4 * 128)  # frames of at least 128 pixels by default
    above = labelled[-(grid.shape[0] + band.shape[0]) : -grid.shape[0]]
    assert np.array_equal(above, band) and labelled.shape[0] > grid.shape[0] + band.shape[0]


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
    headline = caption.split("\n")[0]
    assert seen["title"] == "SpatiotemporalViT"  # the default: the model's class name
    assert headline.startswith("ToMe r=6, frame scope: 33 -> 21 tokens; predicts ")  # 2 blocks of 6
    assert headline.split()[-1] in ("cat", "dog", "bird")
    visualize_merges(model, clip, r=(6, -1.0), method="random_drop", title="")
    headline = seen["captions"][0].split("\n")[0]
    assert seen["title"] == "" and headline.startswith("random drop r=[6, -1.0], spacetime scope: 33 -> ")
    assert headline.split()[-2:] in (["class", "0"], ["class", "1"], ["class", "2"])


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
