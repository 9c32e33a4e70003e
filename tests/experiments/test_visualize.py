"""What every modality's merge picture shares: readable captions, label strips, axes with tick labels, the gallery
grid, the reduction's label, the renaming warning."""

import inspect
import warnings

import numpy as np
import pytest
from PIL import Image

from tests.picture_helpers import ink_runs
from tokenmerge.experiments.visualize import (
    draw_axes,
    label_panels,
    merge_gallery,
    nice_ticks,
    reduction_label,
    text_band,
    warn_renamed,
)


def block(width, height, value):
    return Image.fromarray(np.full((height, width, 3), value, np.uint8))


def dark(picture: Image.Image) -> np.ndarray:
    """[H, W] bool: the pixels of text and lines (dark in every channel)."""
    return (np.asarray(picture) < 128).all(-1)


def test_captions_are_at_least_14_pixels_high():
    out = label_panels([block(300, 10, 255)], ["Hg|"])  # from the top of H to the bottom of g and |
    (first, last), *rest = ink_runs(dark(out).any(1))
    assert last - first + 1 >= 14 and not rest


def test_a_newline_in_a_caption_starts_a_line():
    one, two = (label_panels([block(300, 10, 255)], [text]) for text in ("a b", "a\nb"))
    assert len(ink_runs(dark(one).any(1))) == 1 and len(ink_runs(dark(two).any(1))) == 2
    assert two.height > one.height and np.array_equal(np.asarray(two)[-10:], np.asarray(one)[-10:])


def test_text_band_centres_one_label_over_each_span():
    band = text_band([("frame 0", 128), ("frame 1", 128), ("time slice 0", 256)], rule=True)
    assert band.size[0] == 512
    text, rule = ink_runs(dark(band).any(1))
    labels = ink_runs(dark(band)[text[0] : text[1] + 1].any(0), gap=8)
    assert [round((a + b) / 2 / 64) for a, b in labels] == [1, 3, 6]  # centres at 64, 192 and 384
    assert text[1] - text[0] + 1 >= 11  # "frame", "time": ascenders of a 16-pixel font
    assert ink_runs(dark(band)[rule[0]], gap=2) == [(4, 123), (132, 251), (260, 507)]  # a rule under each span


def test_nice_ticks():
    assert nice_ticks(128, 8) == [0, 20, 40, 60, 80, 100, 120]
    assert nice_ticks(1.28, 8) == [0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2]  # rounded: no 0.6000000000000001
    assert nice_ticks(10.24, 6) == [0, 2, 4, 6, 8, 10] and nice_ticks(100, 3) == [0, 50, 100]
    for stop in (0.7, 3, 128, 1024):
        for count in range(2, 12):
            assert 2 <= len(nice_ticks(stop, count)) <= count and nice_ticks(stop, count)[-1] <= stop


def test_axes_surround_the_picture_with_tick_labels():
    picture = block(200, 100, (10, 200, 30))
    ticks = [(0, "0"), (100, "50"), (200, "100")]
    out = draw_axes(picture, ticks, [(0, "1"), (100, "0")], "x title", [(50, "y title")], minor_x=[50, 150])
    pixels = np.asarray(out)
    rows, columns = np.nonzero((pixels == (10, 200, 30)).all(-1))
    top, left = rows.min(), columns.min()
    assert (rows.max() - top + 1, columns.max() - left + 1) == (100, 200)  # pasted unscaled
    assert left > 30 and out.width > left + 200 and out.height > top + 100 + 30  # margins for the axes
    below = dark(out)[top + 100 :, left - 10 :]
    marks, labels, title = ink_runs(below.any(1))
    assert len(ink_runs(below[labels[0] : labels[1] + 1].any(0), gap=8)) == 3  # one label per tick
    assert len(ink_runs(below[marks[0] + 2], gap=2)) == 5  # long ticks at 0, 100, 200 and short ones at 50, 150
    assert len(ink_runs(below[marks[1]], gap=2)) == 3
    blank = draw_axes(picture, [(x, "") for x, _ in ticks], [(0, ""), (100, "")], "x title", [(50, "y title")])
    assert blank.size != out.size or not np.array_equal(np.asarray(blank), pixels)
    left_of = dark(out)[top - 8 : top + 108, left - 20 : left - 8]
    assert len(ink_runs(left_of.any(1))) == 2  # the y labels "1" and "0"


def test_gallery_one_column_stacks_pictures_without_gaps():
    out = np.asarray(merge_gallery([block(4, 2, 10), block(3, 5, 20)]))
    assert out.shape == (7, 4, 3)
    assert (out[:2] == 10).all() and (out[2:, :3] == 20).all() and (out[2:, 3] == 255).all()  # white beside


def test_gallery_grid_cells_follow_the_widest_column_and_highest_row():
    pictures = [block(2, 3, 1), block(4, 1, 2), block(3, 2, 3)]  # two columns: a second row with one picture
    out = np.asarray(merge_gallery(pictures, columns=2, gap=1))
    assert out.shape == (3 + 1 + 2, 3 + 1 + 4, 3)
    assert (out[:3, :2] == 1).all() and (out[:1, 4:] == 2).all() and (out[4:, :3] == 3).all()
    assert (out[:, 3] == 255).all() and (out[3] == 255).all() and (out[1:3, 4:] == 255).all()


def test_gallery_needs_a_picture():
    with pytest.raises(ValueError, match="at least one picture"):
        merge_gallery([])


def test_reduction_label():
    assert reduction_label("tome", 8) == "ToMe r=8"
    assert reduction_label("tome", (8, -1.0)) == "ToMe r=[8, -1.0]"
    assert reduction_label("random_drop", 0.25) == "random drop r=0.25"


def old_function():
    warn_renamed("old_function()", "new_function()")


def test_the_renaming_warning_names_the_new_spelling_at_the_callers_line():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        line = inspect.currentframe().f_lineno + 1
        old_function()
    (warning,) = seen
    assert warning.category is DeprecationWarning and (warning.filename, warning.lineno) == (__file__, line)
    assert str(warning.message) == (
        "old_function() is deprecated and will be removed in the next release; use new_function() instead."
    )


def test_every_modality_draws_with_the_same_call():
    from tokenmerge.audio.visualize import visualize_merges as audio
    from tokenmerge.image.visualize import visualize_merges as image
    from tokenmerge.video.visualize import visualize_merges as video

    shared = {"prop_attn": True, "method": "tome", "class_names": None, "title": None, "labels": True}
    for function in (image, video, audio):
        parameters = list(inspect.signature(function).parameters.values())
        assert [p.name for p in parameters[:3]] == ["model", "inputs", "r"]
        assert {p.name: p.default for p in parameters[3:8]} == shared  # in this order; the modality's keywords after
        assert [p.name for p in parameters[3:8]] == list(shared)
        assert all(p.kind is p.KEYWORD_ONLY for p in parameters[2:])
