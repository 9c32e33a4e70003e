"""Layer schedules: constant, per-layer list, (r, inflection) ramp, ratio; clamping and errors."""

import pytest

from tokenmerge.core import ramp_schedule, resolve_schedule, tokens_per_layer


def test_constant_schedule_matches_paper_vit_b_r16():
    # 197 tokens, r=16: the last layer receives 21 tokens and can merge only (21 - 1) // 2 = 10.
    schedule = resolve_schedule(16, 12, 197, protected=1)
    assert schedule == [16] * 11 + [10]
    assert tokens_per_layer(schedule, 197)[-1] == 197 - 16 * 11 - 10


def test_constant_schedule_is_clamped_per_layer():
    schedule = resolve_schedule(40, 4, 65, protected=1)
    assert schedule == [32, 16, 8, 4]
    assert tokens_per_layer(schedule, 65) == [65, 33, 17, 9, 5]


def test_per_layer_list():
    assert resolve_schedule([0, 5, 10], 3, 100) == [0, 5, 10]
    with pytest.raises(ValueError, match="one r per layer"):
        resolve_schedule([1, 2], 3, 100)
    with pytest.raises(ValueError, match=">= 0"):
        resolve_schedule([1, -2, 3], 3, 100)


def test_ramp_has_mean_r_and_direction():
    down = ramp_schedule(8, -1.0, 5)
    up = ramp_schedule(8, 1.0, 5)
    assert down == [16, 12, 8, 4, 0] and up == [0, 4, 8, 12, 16]
    assert ramp_schedule(8, 0.0, 5) == [8] * 5
    assert resolve_schedule((8, -1.0), 5, 197) == down
    with pytest.raises(ValueError, match="inflection"):
        resolve_schedule((8, 1.5), 5, 197)


def test_ratio_merges_a_fraction_of_current_tokens():
    schedule = resolve_schedule(0.25, 3, 101, protected=1)
    assert schedule == [25, 18, 14]
    with pytest.raises(ValueError, match="ratio"):
        resolve_schedule(0.7, 3, 101)


@pytest.mark.parametrize("bad", [-1, "16", None, 2.5])
def test_invalid_specs_raise(bad):
    with pytest.raises((ValueError, TypeError)):
        resolve_schedule(bad, 4, 50)


def test_schedule_spec_from_config_fields():
    from tokenmerge.core import schedule_spec

    assert schedule_spec(16) == 16
    assert schedule_spec(16, inflection=-0.5) == (16, -0.5)
    assert schedule_spec([1, 2], None) == [1, 2]
    assert schedule_spec(0, ratio=0.1) == 0.1
    with pytest.raises(ValueError, match="either"):
        schedule_spec(8, ratio=0.1)
