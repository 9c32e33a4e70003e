"""Source tracking and unmerging across several merge steps."""

import pytest
import torch

from tokenmerge.core import bipartite_soft_matching, initial_source, merge_source, merge_wavg, unmerge_with_source
from tokenmerge.core.scope import grouped_reduction


def _merge_layers(x, rs, protected):
    """Run several ToMe steps; returns (tokens, sizes, source, matchings)."""
    size, source, steps = None, None, []
    for r in rs:
        m = bipartite_soft_matching(x, r, protected=protected)
        source = merge_source(m, x, source)
        x, size = merge_wavg(m, x, size)
        steps.append(m)
    return x, size, source, steps


def test_source_is_a_partition_matching_sizes():
    x = torch.randn(2, 65, 16)
    merged, size, source, _ = _merge_layers(x, [8, 8, 8, 8], protected=1)
    assert merged.shape[1] == 65 - 32
    assert torch.equal(source.sum(1), torch.ones(2, 65))  # each input token is held by exactly one token
    torch.testing.assert_close(source.sum(2, keepdim=True), size)
    assert source[:, 0, 0].eq(1).all() and source[:, 0].sum(-1).eq(1).all()  # class token alone


def test_merged_tokens_are_size_weighted_means_of_their_sources():
    x = torch.randn(1, 40, 8, dtype=torch.float64)
    merged, size, source, _ = _merge_layers(x, [6, 6, 6], protected=0)
    expected = (source @ x) / source.sum(-1, keepdim=True)
    torch.testing.assert_close(merged, expected)


def test_unmerge_with_source_equals_chained_unmerge():
    x = torch.randn(2, 50, 8)
    merged, _, source, steps = _merge_layers(x, [10, 7, 5], protected=1)
    chained = merged
    for m in reversed(steps):
        chained = m.unmerge(chained)
    torch.testing.assert_close(unmerge_with_source(merged, source), chained)
    assert chained.shape == x.shape


def test_initial_source_is_identity():
    assert torch.equal(initial_source(5, 2)[1], torch.eye(5))


class _GenericReduction:
    """A matching seen only through the TokenReduction protocol (no ``merge_weighted``): merge_wavg's generic path."""

    def __init__(self, matching):
        self.num_tokens, self.r, self._matching = matching.num_tokens, matching.r, matching

    def merge(self, x, mode="mean"):
        return self._matching.merge(x, mode)

    def unmerge(self, x):
        return self._matching.unmerge(x)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
@pytest.mark.parametrize("sized", [True, False])
def test_matching_fast_weighted_merge_equals_the_generic_path(dtype, sized):
    torch.manual_seed(0)
    x = (torch.randn(3, 41, 8, dtype=torch.float64) * 50).to(dtype)
    size = torch.randint(1, 300, (3, 41, 1)).double() if sized else None
    if sized and dtype == torch.float16:
        size = size.float()
    matching = bipartite_soft_matching(torch.randn(3, 41, 8, dtype=torch.float64), 13, protected=1)
    fast = merge_wavg(matching, x, size)
    generic = merge_wavg(_GenericReduction(matching), x, size)
    assert fast[0].dtype == dtype and fast[1].dtype == generic[1].dtype
    torch.testing.assert_close(fast[1], generic[1], rtol=0, atol=0)  # sizes are exact counts
    torch.testing.assert_close(fast[0], generic[0], rtol=1e-12 if dtype == torch.float64 else 1e-3, atol=0)


def test_grouped_fast_weighted_merge_equals_the_generic_path():
    torch.manual_seed(1)
    x, metric = torch.randn(2, 1 + 4 * 10, 6, dtype=torch.float64), torch.randn(2, 1 + 4 * 10, 6, dtype=torch.float64)
    size = torch.randint(1, 9, (2, 41, 1)).double()
    grouped = grouped_reduction(bipartite_soft_matching, metric, 8, protected=1, groups=4)
    fast = merge_wavg(grouped, x, size)
    generic = merge_wavg(_GenericReduction(grouped), x, size)
    torch.testing.assert_close(fast, generic, rtol=1e-12, atol=0)
