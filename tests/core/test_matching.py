"""Bipartite soft matching against the paper's algorithm and its invariants."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tests.core.reference import reference_merge
from tokenmerge.core import (
    bipartite_soft_matching,
    max_merge,
    merge_wavg,
    random_bipartite_matching,
    random_token_dropping,
)

shapes = st.tuples(
    st.integers(1, 3),  # batch
    st.integers(1, 40),  # tokens
    st.integers(0, 6),  # protected
    st.integers(-3, 30),  # r
    st.integers(0, 2**31 - 1),  # seed
)


def _inputs(batch, n, channels=8, seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, n, channels, generator=gen).to(dtype)


def _sorted_rows(x: torch.Tensor) -> torch.Tensor:
    """Rows in a canonical order, to compare token sets up to permutation."""
    keys = x.detach().double()
    order = sorted(range(len(keys)), key=lambda i: tuple(keys[i].tolist()))
    return x[order]


@given(shapes)
def test_matches_reference_algorithm(shape):
    batch, n, protected, r, seed = shape
    protected = min(protected, n)
    metric = _inputs(batch, n, seed=seed, dtype=torch.float64)
    x = _inputs(batch, n, channels=5, seed=seed + 1, dtype=torch.float64)
    merged = bipartite_soft_matching(metric, r, protected=protected).merge(x)
    for i in range(batch):
        expected = torch.stack(reference_merge(metric[i], x[i], max(r, 0), protected))
        torch.testing.assert_close(_sorted_rows(merged[i]), _sorted_rows(expected))


@given(shapes)
def test_removes_exactly_clamped_r_and_keeps_protected(shape):
    batch, n, protected, r, seed = shape
    protected = min(protected, n)
    x = _inputs(batch, n, seed=seed)
    m = bipartite_soft_matching(x, r, protected=protected)
    expected_r = min(max(r, 0), (n - protected) // 2)
    assert m.r == expected_r == min(max(r, 0), max_merge(n, protected))
    out = m.merge(x)
    assert out.shape == (batch, n - expected_r, x.shape[-1])
    assert torch.equal(out[:, :protected], x[:, :protected])


@given(shapes)
def test_sizes_sum_to_n_and_weighted_sum_is_conserved(shape):
    batch, n, protected, r, seed = shape
    protected = min(protected, n)
    x = _inputs(batch, n, seed=seed, dtype=torch.float64)
    size = torch.randint(1, 5, (batch, n, 1), generator=torch.Generator().manual_seed(seed)).double()
    m = bipartite_soft_matching(x, r, protected=protected)
    merged, new_size = merge_wavg(m, x, size)
    torch.testing.assert_close(new_size.sum(1), size.sum(1))
    torch.testing.assert_close((merged * new_size).sum(1), (x * size).sum(1))


def test_nothing_merges_into_protected_tokens():
    # Protected tokens identical to every other token would attract all merges if they took part.
    x = torch.randn(2, 21, 8)
    x[:, :3] = x[:, 3:4]
    x[:, 5::2] = x[:, 3:4]
    size = torch.ones(2, 21, 1)
    merged, new_size = merge_wavg(bipartite_soft_matching(x, 9, protected=3), x, size)
    assert torch.equal(new_size[:, :3], torch.ones(2, 3, 1))
    assert torch.equal(merged[:, :3], x[:, :3])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_dtype_and_device_preserved_and_sizes_stay_float32(dtype):
    x = _inputs(2, 33, dtype=dtype)
    m = bipartite_soft_matching(x, 8, protected=1)
    merged, size = merge_wavg(m, x)
    assert merged.dtype == dtype and size.dtype == torch.float32 and merged.device == x.device
    assert m.unmerge(merged).dtype == dtype


def test_sizes_are_exact_at_video_token_counts_in_low_precision():
    """1568 tokens merged down to a few: float16/bfloat16 sizes would not be exact, float32 sizes are."""
    x = _inputs(1, 1569, dtype=torch.bfloat16)
    size = None
    for _ in range(9):
        x, size = merge_wavg(bipartite_soft_matching(x, 10_000, protected=1), x, size)
    assert x.shape[1] < 10 and size.sum().item() == 1569.0 and size.max().item() > 256


@given(shapes)
def test_samples_are_independent(shape):
    batch, n, protected, r, seed = shape
    protected = min(protected, n)
    x = _inputs(batch + 1, n, seed=seed)
    together = bipartite_soft_matching(x, r, protected=protected).merge(x)
    for i in range(batch + 1):
        alone = bipartite_soft_matching(x[i : i + 1], r, protected=protected).merge(x[i : i + 1])
        assert torch.equal(together[i : i + 1], alone)


@given(st.integers(1, 12), st.integers(0, 3), st.integers(0, 2**31 - 1))
def test_merging_exact_duplicates_loses_nothing(pairs, protected, seed):
    # Every unprotected A token is an exact copy of a B token: merging all pairs, then unmerging,
    # must give back the input exactly.
    x = _inputs(1, protected + 2 * pairs, seed=seed)
    a_start = protected % 2
    x[:, protected + a_start :: 2] = x[:, protected + 1 - a_start :: 2]
    m = bipartite_soft_matching(x, pairs, protected=protected)
    merged, size = merge_wavg(m, x)
    assert m.r == pairs and merged.shape[1] == protected + pairs
    torch.testing.assert_close(m.unmerge(merged), x)


def test_gradients_flow_through_merging():
    x = torch.randn(2, 17, 8, requires_grad=True)
    m = bipartite_soft_matching(x, 6, protected=1)
    merged, size = merge_wavg(m, x)
    merged.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@given(shapes)
def test_unmerge_restores_shape_and_positions(shape):
    batch, n, protected, r, seed = shape
    protected = min(protected, n)
    x = _inputs(batch, n, seed=seed)
    m = bipartite_soft_matching(x, r, protected=protected)
    restored = m.unmerge(m.merge(x, mode="amax"))
    assert restored.shape == x.shape
    # Each position gets a value of its own group; unmerged tokens get exactly themselves.
    unchanged = (restored == x).all(-1).sum(1)
    assert (unchanged >= n - 2 * m.r).all()


def test_r_zero_and_negative_are_identity():
    x = torch.randn(2, 10, 4)
    for r in (0, -5):
        m = bipartite_soft_matching(x, r)
        assert m.merge(x) is x and m.unmerge(x) is x


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match=r"\[B, N, C\]"):
        bipartite_soft_matching(torch.randn(10, 4), 2)
    with pytest.raises(ValueError, match="protected"):
        bipartite_soft_matching(torch.randn(1, 4, 4), 1, protected=5)
    m = bipartite_soft_matching(torch.randn(1, 10, 4), 2)
    with pytest.raises(ValueError, match="shape"):
        m.merge(torch.randn(1, 9, 4))
    with pytest.raises(ValueError, match="merge mode"):
        m.merge(torch.randn(1, 10, 4), mode="median")


def test_random_matching_has_same_interface_and_invariants():
    x = torch.randn(3, 50, 8)
    gen = torch.Generator().manual_seed(0)
    m = random_bipartite_matching(x, 12, protected=2, generator=gen)
    merged, size = merge_wavg(m, x)
    assert merged.shape == (3, 38, 8) and torch.equal(merged[:, :2], x[:, :2])
    torch.testing.assert_close(size.sum(1), torch.full((3, 1), 50.0))
    tome = bipartite_soft_matching(x, 12, protected=2)
    assert not torch.equal(m.src_idx, tome.src_idx)


@pytest.mark.parametrize("reduce", [bipartite_soft_matching, random_bipartite_matching, random_token_dropping])
def test_padding_goes_first_and_never_into_real_tokens(reduce):
    """Rows with 4 and 0 padding tokens at the end: r=2 removes padding only in the padded row."""
    x = torch.randn(2, 11, 8)
    padding = torch.zeros(2, 11, dtype=torch.bool)
    padding[0, 7:] = True
    m = reduce(x, 2, protected=1, padding=padding)
    kept = m.merge(padding[..., None].float(), mode="amax")[..., 0]  # 1 where a kept token holds padding
    real_kept = m.merge((~padding)[..., None].float(), mode="sum")[..., 0]
    assert real_kept[0].sum() == 7 and kept[0].sum() == 2  # 4 padding tokens became 2 (or 2 were dropped)
    assert not ((kept[0] > 0) & (real_kept[0] > 0)).any()
