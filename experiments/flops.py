"""FLOP counting with ``torch.utils.flop_counter.FlopCounterMode``.

PyTorch's counter has formulas for the CUDA attention kernels but not for the CPU flash kernel that
``scaled_dot_product_attention`` uses on CPU; we register the same formula for it so counts agree on
every device.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

aten = torch.ops.aten


def _attention_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """2 matmuls of [B, H, Nq, D] x [B, H, D, Nk] and [B, H, Nq, Nk] x [B, H, Nk, Dv]."""
    batch, heads, n_q, d = query_shape
    n_k, d_v = key_shape[-2], value_shape[-1]
    return 2 * batch * heads * n_q * n_k * d + 2 * batch * heads * n_q * n_k * d_v


def _attention_backward_flops(
    grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs
) -> int:
    """Backward attention does twice the forward matmul work."""
    return 2 * _attention_flops(query_shape, key_shape, value_shape)


CPU_ATTENTION_FLOPS = {
    aten._scaled_dot_product_flash_attention_for_cpu: _attention_flops,
    aten._scaled_dot_product_flash_attention_for_cpu_backward: _attention_backward_flops,
}


def count_flops(fn: Callable, *args, **kwargs) -> int:
    """Total FLOPs (multiply-add = 2 FLOPs) of one call ``fn(*args, **kwargs)``, run without gradients."""
    with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION_FLOPS) as counter:
        fn(*args, **kwargs)
    return counter.get_total_flops()


def ideal_speedup(baseline_flops: int, merged_flops: int) -> float:
    """The speedup FLOPs alone would give: baseline FLOPs / merged FLOPs."""
    if merged_flops <= 0:
        raise ValueError(f"merged_flops must be positive; got {merged_flops}.")
    return baseline_flops / merged_flops
