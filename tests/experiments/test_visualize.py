"""What every modality's merge picture shares: the gallery grid, the reduction's label, the renaming warning."""

import inspect
import warnings

import numpy as np
import pytest
from PIL import Image

from tokenmerge.experiments.visualize import merge_gallery, reduction_label, warn_renamed


def block(width, height, value):
    return Image.fromarray(np.full((height, width, 3), value, np.uint8))


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
