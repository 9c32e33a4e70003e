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


@pytest.mark.parametrize("padded", [False, True])
def test_folded_kernel_equals_explicit_softmax(padded):
    gen = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(2, 3, 13, 8, generator=gen, dtype=torch.float64) for _ in range(3))
    size = torch.randint(1, 9, (2, 13, 1), generator=gen).double()
    if padded:
        size[1, 9:] = 0  # padding: no attention to it
    expected = _explicit(q, k, v, size)
    torch.testing.assert_close(proportional_attention(q, k, v, size, kernel="folded"), expected)
    torch.testing.assert_close(proportional_attention(q, k, v, size, kernel="mask"), expected)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_folded_kernel_in_half_precision_is_as_close_as_the_mask(dtype):
    gen = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 4, 40, 64, generator=gen) for _ in range(3))
    size = torch.randint(1, 200, (2, 40, 1), generator=gen).float()
    expected = _explicit(q.double(), k.double(), v.double(), size.double())
    errors = {
        kernel: (
            proportional_attention(q.to(dtype), k.to(dtype), v.to(dtype), size.to(dtype), kernel=kernel).double()
            - expected
        )
        .abs()
        .max()
        .item()
        for kernel in ("mask", "folded")
    }
    assert errors["folded"] < 2 * errors["mask"] + 1e-3, errors


def test_folded_kernel_gradients_equal_the_mask_kernels():
    gen = torch.Generator().manual_seed(4)
    inputs = [torch.randn(2, 2, 9, 8, generator=gen, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    size = torch.randint(1, 5, (2, 9, 1), generator=gen).double()
    grads = {}
    for kernel in ("mask", "folded"):
        grads[kernel] = torch.autograd.grad(proportional_attention(*inputs, size, kernel=kernel).square().sum(), inputs)
    for mask_grad, folded_grad in zip(grads["mask"], grads["folded"]):
        torch.testing.assert_close(folded_grad, mask_grad)


def test_unknown_kernel_is_refused():
    q = torch.randn(1, 2, 5, 8)
    with pytest.raises(ValueError, match="choose one of"):
        proportional_attention(q, q, q, torch.ones(1, 5, 1), kernel="flash")
