"""Merge arithmetic, sizes, similarity scores and pooling stay exact enough in float16 and bfloat16.

Each test here failed before merges were computed in float32: ``x * size`` overflowed in float16 and rounded sizes in
bfloat16, bfloat16 similarity scores chose other pairs, and padding could win max pooling.
"""

import pytest
import torch

from tokenmerge.core import bipartite_soft_matching, merge_wavg, random_bipartite_matching, size_weighted_pool
from tokenmerge.core.scope import grouped_reduction


def _pair_merge(x, size):
    """A matching that merges token 0 (set A) into token 1 (set B) of a two-token sequence."""
    return bipartite_soft_matching(torch.ones(x.shape[0], 2, 4), 1), x, size


def test_float16_merge_of_large_channels_does_not_overflow():
    # A channel of 300 in a token of size 300 (large ViTs have channels of several hundred): 300 * 300 > 65504.
    x = torch.tensor([[[300.0], [100.0]]], dtype=torch.float16)
    size = torch.tensor([[[300.0], [100.0]]])
    matching, x, size = _pair_merge(x, size)
    merged, merged_size = merge_wavg(matching, x, size)
    assert merged.dtype == torch.float16 and merged_size.dtype == torch.float32
    assert torch.isfinite(merged).all()
    assert merged.item() == pytest.approx((300 * 300 + 100 * 100) / 400, rel=1e-3)
    assert merged_size.item() == 400


def test_bfloat16_merge_keeps_sizes_exact():
    # bfloat16 holds 8 bits of mantissa: 257 * 1.0 rounds to 256 if the product is taken in bfloat16.
    x = torch.tensor([[[1.0], [0.0]]], dtype=torch.bfloat16)
    size = torch.tensor([[[257.0], [1.0]]])
    matching, x, size = _pair_merge(x, size)
    merged, merged_size = merge_wavg(matching, x, size)
    assert merged.item() == torch.tensor(257 / 258, dtype=torch.bfloat16).item()
    assert merged_size.item() == 258


def _near_parallel_keys(batch=4, tokens=64, channels=32):
    """Keys that differ from one direction by small noise: their cosines differ only in the 3rd-4th digit."""
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(batch, 1, channels, generator=gen)
    return (base + 0.02 * torch.randn(batch, tokens, channels, generator=gen)).bfloat16()


@pytest.mark.parametrize("protected", [0, 1])
def test_bfloat16_keys_choose_the_pairs_float32_scores_choose(protected):
    keys = _near_parallel_keys()
    low = bipartite_soft_matching(keys, 16, protected=protected)
    exact = bipartite_soft_matching(keys.float(), 16, protected=protected)
    for name in ("src_idx", "dst_idx", "unm_idx"):
        assert torch.equal(getattr(low, name), getattr(exact, name)), name


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_every_reduction_merges_low_precision_tokens_as_float32_would(dtype):
    gen = torch.Generator().manual_seed(1)
    x = (200 * torch.randn(2, 33, 16, generator=gen)).to(dtype)
    size = torch.randint(1, 300, (2, 33, 1), generator=gen).float()
    metric = torch.randn(2, 33, 8, generator=gen)
    reductions = {
        "tome": bipartite_soft_matching(metric, 10, protected=1),
        "random_merge": random_bipartite_matching(metric, 10, protected=1, generator=torch.Generator().manual_seed(2)),
        "scoped": grouped_reduction(bipartite_soft_matching, metric, 8, protected=1, groups=4),
    }
    for name, reduction in reductions.items():
        merged, merged_size = merge_wavg(reduction, x, size)
        expected, expected_size = merge_wavg(reduction, x.double(), size.double())
        assert torch.isfinite(merged).all(), name
        torch.testing.assert_close(merged.double(), expected.to(dtype).double(), rtol=0, atol=0, msg=name)
        assert torch.equal(merged_size.double(), expected_size), name


@pytest.mark.parametrize("mode", ["max", "avgmax"])
def test_padding_never_reaches_max_pooling(mode):
    x = torch.tensor([[[1.0, -2.0], [3.0, 0.5], [100.0, 100.0]]])
    size = torch.tensor([[[2.0], [1.0], [0.0]]])  # the last token is padding
    pooled = size_weighted_pool(x, size, mode)
    real = size_weighted_pool(x[:, :2], size[:, :2], mode)
    torch.testing.assert_close(pooled, real)
    assert pooled.max() < 100


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_size_weighted_average_pooling_rounds_once_in_low_precision(dtype):
    # Weighted in float32 and cast once, each pooled value is within one unit in the last place of the exact mean
    # (weighting in the token dtype was measured 110 (float16) and 354 (bfloat16) units off).
    gen = torch.Generator().manual_seed(3)
    x = (100 * torch.randn(4, 197, 64, generator=gen)).to(dtype)
    size = torch.randint(1, 300, (4, 197, 1), generator=gen).float()
    pooled = size_weighted_pool(x, size, "avg").double()
    exact = size_weighted_pool(x.double(), size.double(), "avg")
    assert ((pooled - exact).abs() <= exact.abs() * torch.finfo(dtype).eps).all()
