"""Merge scopes: matching within equal groups of tokens (a video's frames), and schedules split across groups."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tokenmerge.core import (
    ToMeConfig,
    bipartite_soft_matching,
    grouped_reduction,
    merge_source,
    merge_wavg,
    random_token_dropping,
    resolve_schedule,
)


def _tokens(batch, protected, groups, per_group, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, protected + groups * per_group, 8, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("protected", [0, 1, 2])
def test_grouped_matching_is_one_matching_per_group(protected):
    groups, per_group, r = 3, 10, 6
    x = _tokens(2, protected, groups, per_group)
    grouped = grouped_reduction(bipartite_soft_matching, x, r, protected=protected, groups=groups)
    merged, size = merge_wavg(grouped, x)
    assert grouped.r == r and merged.shape[1] == x.shape[1] - r
    assert torch.equal(merged[:, :protected], x[:, :protected]) and size[:, :protected].eq(1).all()
    torch.testing.assert_close(size.sum(1), torch.full((2, 1), float(x.shape[1]), dtype=torch.float64))
    kept = per_group - r // groups
    for i in range(groups):
        part = x[:, protected + i * per_group : protected + (i + 1) * per_group]
        alone, _ = merge_wavg(bipartite_soft_matching(part, r // groups), part)
        torch.testing.assert_close(merged[:, protected + i * kept : protected + (i + 1) * kept], alone)


def test_grouped_sources_stay_in_their_group_and_unmerge_restores_layout():
    x = _tokens(1, 1, 4, 8)
    grouped = grouped_reduction(bipartite_soft_matching, x, 12, protected=1, groups=4)
    source = merge_source(grouped, x)  # [1, 21, 33]
    group_of_input = torch.cat([torch.tensor([-1]), torch.arange(4).repeat_interleave(8)])
    for token in range(1, source.shape[1]):
        held = group_of_input[source[0, token].bool()]
        assert held.unique().numel() == 1 and held[0] == (token - 1) // 5
    assert grouped.unmerge(grouped.merge(x)).shape == x.shape
    dropped = grouped_reduction(random_token_dropping, x, 8, protected=1, groups=4)
    assert dropped.merge(x).shape == (1, 25, 8)


def test_grouped_reduction_rejects_uneven_splits():
    with pytest.raises(ValueError, match="multiple of the group count"):
        grouped_reduction(bipartite_soft_matching, _tokens(1, 1, 4, 8), 6, protected=1, groups=4)


@given(
    r=st.integers(0, 40),
    groups=st.integers(1, 8),
    per_group=st.integers(2, 60),
    layers=st.integers(1, 12),
    protected=st.integers(0, 2),
)
def test_grouped_schedule_tracks_the_ungrouped_one(r, groups, per_group, layers, protected):
    n = protected + groups * per_group
    plain = resolve_schedule(r, layers, n, protected)
    split = resolve_schedule(r, layers, n, protected, groups=groups)
    tokens = n
    for i, removed in enumerate(split):
        assert removed % groups == 0 and removed // groups <= (tokens - protected) // groups // 2
        tokens -= removed
        assert sum(split[: i + 1]) <= sum(plain[: i + 1])
    if groups == 1:
        assert split == plain
    if r * layers <= per_group // 4 * groups:  # far from the clamp: within groups - 1 of the plain running total
        assert all(sum(plain[: i + 1]) - sum(split[: i + 1]) < groups for i in range(layers))


@pytest.mark.parametrize(
    "field, value, error",
    [
        ("r", -1, ">= 0"),
        ("r", 0.6, r"\[0, 0.5\]"),
        ("r", "abc", "must be an int"),
        ("r", (8, 2.0), "inflection"),
        ("method", "bogus", "choose one of"),
        ("prop_attn", "yes", "True or False"),
    ],
)
def test_config_rejects_bad_settings_when_set(field, value, error):
    with pytest.raises((ValueError, TypeError), match=error):
        ToMeConfig(**{field: value})
    config = ToMeConfig()
    with pytest.raises((ValueError, TypeError), match=error):
        setattr(config, field, value)
    config.bind(num_layers=3, scopes=("all",))
    with pytest.raises(ValueError, match="one r per layer"):
        config.r = [1, 2]
    with pytest.raises(ValueError, match="merge_scope"):
        config.merge_scope = "frame"
