"""CUDA checks (skipped without a GPU): the core ops agree with the CPU and keep device and dtype."""

import pytest
import torch

from tokenmerge.core import bipartite_soft_matching, merge_wavg, proportional_attention


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_matching_on_cuda_matches_cpu(dtype):
    x = torch.randn(4, 197, 64, dtype=torch.float64)
    cpu = bipartite_soft_matching(x, 16, protected=1)
    gpu = bipartite_soft_matching(x.cuda(), 16, protected=1)
    assert torch.equal(cpu.src_idx, gpu.src_idx.cpu()) and torch.equal(cpu.dst_idx, gpu.dst_idx.cpu())
    merged, size = merge_wavg(gpu, x.cuda().to(dtype))
    assert merged.device.type == "cuda" and merged.dtype == dtype and size.dtype == torch.float32  # sizes: float32
    torch.testing.assert_close(merged.cpu(), merge_wavg(cpu, x.to(dtype))[0])  # float32 arithmetic on both devices


@pytest.mark.gpu
def test_proportional_attention_on_cuda_half_precision():
    q = torch.randn(2, 4, 50, 64, device="cuda", dtype=torch.float16)
    size = torch.randint(1, 5, (2, 50, 1), device="cuda").half()
    expected = proportional_attention(q.float(), q.float(), q.float(), size.float())
    torch.testing.assert_close(proportional_attention(q, q, q, size).float(), expected, atol=2e-2, rtol=2e-2)
