"""Schedules written as text (command line) and the note a clamped schedule gets."""

import pytest

from tokenmerge.core.schedule import clamp_note, parse_schedule


def test_text_schedules_take_the_api_forms():
    assert parse_schedule("8") == 8
    assert parse_schedule("8,-1") == (8, -1.0) and parse_schedule("(8, -1)") == (8, -1.0)
    assert parse_schedule("0.25") == 0.25
    assert parse_schedule("[8,8,4,4]") == [8, 8, 4, 4] and parse_schedule("8,8,4") == [8, 8, 4]
    bad_texts = (("abc", "Cannot read the schedule"), ("-3", ">= 0"), ("0.7", r"\[0, 0.5\]"), ("8,3", "inflection"))
    for bad, message in bad_texts:
        with pytest.raises(ValueError, match=message):
            parse_schedule(bad)


def test_clamp_note_says_what_really_runs():
    note = clamp_note(1000, 6, 65, protected=1)
    assert "r=1000 clamped" in note and "[32, 16, 8, 4, 2, 1]" in note and "65 -> 2 tokens" in note
    assert clamp_note(8, 6, 65, protected=1) is None
    assert clamp_note(0.5, 6, 65, protected=1) is None  # ratios never exceed what a block can merge
    assert "[32, 16, 8, 0]" in clamp_note((16, -1.0), 4, 65, protected=1)  # the ramp asks 32, 21, 10, 0
