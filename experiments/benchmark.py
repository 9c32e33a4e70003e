"""Speed comparisons of model variants in one run: measured speedup beside the FLOPs-ideal one.

Every variant sees the same input batch, dtype and device; variants are timed in interleaved rounds
(median), and the first variant is the baseline (the unpatched model with the same fused attention).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .flops import count_flops
from .throughput import dtype_name, measure_interleaved


def compare_variants(
    variants: dict[str, Callable[[Tensor], Tensor]],
    inputs: Tensor,
    *,
    rounds: int = 5,
    warmup: int = 1,
    compile: bool = False,
    **extra,
) -> list[dict]:
    """Time every variant on ``inputs`` and count its FLOPs on one sample.

    Args:
        variants: name -> callable (a model, patched or not); the first is the baseline.
        inputs: [B, ...] one batch, already on the device and in the dtype to measure.
        rounds, warmup: interleaved timed rounds and untimed warm-up calls per variant.
        compile: time ``torch.compile(fullgraph=True, dynamic=False)`` of every variant, the baseline included
            (FLOPs are counted eagerly); the first warm-up call compiles.
        **extra: recorded in every row (model name, batch, ...).

    Returns:
        One row per variant: samples/s, speedup over the baseline, GFLOPs per sample, ideal speedup and the
        measured share of it, peak CUDA memory (MB, None off CUDA), device, dtype, threads, rounds, compiled.
    """
    flops = {name: count_flops(fn, inputs[:1]) for name, fn in variants.items()}
    # dynamic=False: every variant is specialised to its own shapes (with the default, a patched model compiled
    # after another one recompiles the shared patched forward with symbolic shapes: slow to trace and to run).
    runners = {
        name: torch.compile(fn, fullgraph=True, dynamic=False) if compile else fn for name, fn in variants.items()
    }
    # The patched variants share the patched forward's code: allow one graph per variant (no eager fallback).
    with torch._dynamo.config.patch(recompile_limit=max(8, 2 * len(variants))):
        speed = measure_interleaved(
            {name: (lambda fn=fn: fn(inputs)) for name, fn in runners.items()},
            batch_size=inputs.shape[0],
            device=inputs.device,
            dtype=inputs.dtype,
            rounds=rounds,
            warmup=warmup,
        )
        memory = {name: peak_cuda_memory(lambda fn=fn: fn(inputs), inputs.device) for name, fn in runners.items()}
    base = next(iter(variants))
    return [
        {
            **extra,
            "variant": name,
            "samples_per_s": speed[name].samples_per_s,
            "speedup": speed[name].samples_per_s / speed[base].samples_per_s,
            "gflops": flops[name] / 1e9,
            "ideal_speedup": flops[base] / flops[name],
            "of_ideal": (speed[name].samples_per_s / speed[base].samples_per_s) / (flops[base] / flops[name]),
            "peak_memory_mb": None if memory[name] is None else memory[name] / 2**20,
            "compiled": compile,
            "batch": inputs.shape[0],
            "dtype": dtype_name(inputs.dtype),
            "device": speed[name].device,
            "threads": speed[name].threads,
            "rounds": rounds,
        }
        for name in variants
    ]


def add_settings(rows: list[dict]) -> list[dict]:
    """Give rows named ``"r=<r> <series>"`` (and a baseline named anything else) their "r" and "series" (the
    baseline: r=0, "baseline"), as :func:`tokenmerge.experiments.plots.plot_speedup_vs_r` reads them."""
    for row in rows:
        first, _, series = row["variant"].partition(" ")
        is_setting = first.startswith("r=") and first[2:].isdigit() and series
        row["r"], row["series"] = (int(first[2:]), series) if is_setting else (0, "baseline")
    return rows


def peak_cuda_memory(fn: Callable[[], object], device: torch.device | str) -> int | None:
    """Peak CUDA memory in bytes allocated while ``fn()`` runs (None off CUDA)."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    with torch.inference_mode():
        fn()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before
