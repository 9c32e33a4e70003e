"""Proportional attention through fused SDPA equals the explicit formula softmax(QK^T/sqrt(d) + log s)V."""

import math

import pytest
import torch

from tokenmerge.core import proportional_attention, size_bias


def _explicit(q, k, v, size):
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if size is not None:
        scores = scores + size.log()[:, None, None, :, 0]
    return scores.softmax(-1) @ v


@pytest.mark.parametrize("with_size", [True, False])
def test_equals_explicit_softmax(with_size):
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 11, 8, generator=gen, dtype=torch.float64) for _ in range(3))
    size = torch.randint(1, 9, (2, 11, 1), generator=gen).double() if with_size else None
    torch.testing.assert_close(proportional_attention(q, k, v, size), _explicit(q, k, v, size))


def test_size_s_counts_as_s_copies_of_a_key():
    # A key of size 3 must act like the same key present three times.
    gen = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 2, 4, 8, generator=gen, dtype=torch.float64) for _ in range(3))
    size = torch.tensor([[3.0, 1.0, 1.0, 1.0]], dtype=torch.float64)[..., None]
    k3, v3 = torch.cat([k[:, :, :1]] * 2 + [k], 2), torch.cat([v[:, :, :1]] * 2 + [v], 2)
    torch.testing.assert_close(proportional_attention(q, k, v, size), proportional_attention(q, k3, v3))


def test_size_bias_shape_and_dtype():
    bias = size_bias(torch.ones(2, 7, 1), torch.float16)
    assert bias.shape == (2, 1, 1, 7) and bias.dtype == torch.float16 and bias.abs().sum() == 0
    assert size_bias(None) is None
