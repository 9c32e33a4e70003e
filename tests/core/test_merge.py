"""Source tracking and unmerging across several merge steps."""

import torch

from tokenmerge.core import bipartite_soft_matching, initial_source, merge_source, merge_wavg, unmerge_with_source


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
