"""mean_over_heads: ToMe's metric, the keys averaged over heads, as k.mean(1) gives it."""

import pytest
import torch

from tokenmerge.core.block import CHAINED_HEAD_SUM_MAX_HEADS, mean_over_heads


def fused_keys(batch: int, tokens: int, heads: int, dim: int, dtype: torch.dtype) -> torch.Tensor:
    """Keys [B, H, N, D] as a view of a fused qkv output [B, N, 3*H*D], the strides a block produces."""
    qkv = torch.randn(batch, tokens, 3 * heads * dim, dtype=torch.float64).to(dtype)
    return qkv.reshape(batch, tokens, 3, heads, dim).permute(2, 0, 3, 1, 4)[1]


@pytest.mark.parametrize("heads", [1, 2, 3, 4, 6, CHAINED_HEAD_SUM_MAX_HEADS, 12])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_equals_the_mean_over_the_head_dim(heads, dtype):
    torch.manual_seed(heads)
    k = fused_keys(3, 17, heads, 8, dtype)
    metric = mean_over_heads(k)
    assert metric.shape == (3, 17, 8) and metric.dtype == dtype
    torch.testing.assert_close(metric, k.mean(1), rtol=0, atol=4 * torch.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_keys_average_like_mean(dtype):
    """float16/bfloat16 keys take k.mean(1), which accumulates in float32 and rounds once."""
    k = fused_keys(2, 9, 4, 8, dtype)
    assert torch.equal(mean_over_heads(k), k.mean(1))


def test_leaves_the_keys_unchanged():
    k = fused_keys(2, 5, 4, 8, torch.float32)
    before = k.clone()
    mean_over_heads(k)
    assert torch.equal(k, before)
