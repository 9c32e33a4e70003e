"""comparison_note: ToMe against the baselines at the same model, scope and r, and small runs said to be small."""

from tokenmerge.experiments.comparison import comparison_note


def _row(method, r, top1, agreement, samples=2000, scope="", model=""):
    return dict(method=method, r=r, top1=top1, agreement=agreement, samples=samples, merge_scope=scope, model=model)


def test_tome_at_or_above_every_baseline_says_so():
    rows = [_row("tome", 0, 0.9, 1.0), _row("tome", 8, 0.8, 0.9), _row("random_drop", 8, 0.8, 0.85)]
    assert comparison_note(rows) == "ToMe's top-1 and agreement are at or above random_drop at every r"


def test_a_baseline_ahead_is_named_with_its_r_and_scope():
    rows = [
        _row("tome", 8, 0.8, 0.9, scope="spacetime"),
        _row("tome", 16, 0.6, 0.7, scope="spacetime"),
        _row("random_drop", 8, 0.7, 0.8, scope="spacetime"),
        _row("random_drop", 16, 0.6, 0.75, scope="spacetime"),  # top-1 tied, agreement ahead
    ]
    assert comparison_note(rows) == "ToMe is below in top-1 or agreement: random_drop at r=16 (spacetime)"


def test_rows_are_paired_within_one_model_and_scope():
    rows = [_row("tome", 8, 0.9, 0.9, model="a"), _row("random_drop", 8, 0.8, 0.8, model="a")]
    rows += [_row("tome", 8, 0.5, 0.5, model="b"), _row("random_drop", 8, 0.6, 0.6, model="b")]
    rows.append(_row("random_drop", 8, 0.99, 0.99, scope="frame", model="a"))  # no ToMe row in its scope: unpaired
    assert comparison_note(rows).endswith(": random_drop at r=8 (b)")


def test_a_small_run_says_it_is_too_small_to_compare():
    rows = [_row("tome", 8, 0.5, 0.9, samples=60), _row("random_drop", 8, 0.55, 0.9, samples=60)]
    note = comparison_note(rows)
    assert "only 60 samples (one sample = 1.7 points)" in note and "too small to compare" in note
    ordered = [_row("tome", 8, 0.6, 0.9, samples=60), _row("random_drop", 8, 0.55, 0.9, samples=60)]
    assert comparison_note(ordered).endswith("(only 60 samples: too few to be sure of the order)")


def test_no_pairs_no_note():
    assert comparison_note([_row("tome", 0, 0.9, 1.0), _row("tome", 8, 0.8, 0.9)]) == ""


def test_equal_scores_up_to_float_rounding_are_a_tie():
    rows = [_row("tome", 8, 0.41999998688697815, 0.99), _row("random_drop", 8, 0.42000000178813934, 0.81)]
    assert comparison_note(rows).startswith("ToMe's top-1 and agreement are at or above random_drop")
