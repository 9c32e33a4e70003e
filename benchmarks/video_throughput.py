"""Throughput of ToMe on the MAE-ST video ViTs (16 x 224, 1568 tokens) in both merge scopes, against the unpatched
model with the same fused attention, with FLOPs-ideal speedups and the cost of the matching at 1568 tokens.

Random weights (speed does not depend on them). For each model the unpatched model, ToMe in the "spacetime"
and "frame" scopes and random dropping at the same r are timed in interleaved rounds (median). Prints a
table and writes JSON.

    python benchmarks/video_throughput.py                      # CPU, float32, batch 1, one thread
    python benchmarks/video_throughput.py --device cuda --dtype float16 --batch 8
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import torch

from tokenmerge.core import bipartite_soft_matching
from tokenmerge.experiments import write_json
from tokenmerge.experiments.benchmark import add_settings, compare_variants, peak_cuda_memory
from tokenmerge.experiments.plots import plot_speedup_vs_r, use_file_backend
from tokenmerge.video import apply_patch, create_model

MODELS = {"vit_base_patch16": (40, 80), "vit_large_patch16": (20, 40)}  # r values: ~1.6x and ~2.2x ideal
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def variants_for(name: str, r_values, device, dtype) -> dict:
    base = create_model(name).eval().to(device, dtype)
    variants = {"unpatched": base}
    for r in r_values:
        for label, scope, method in (("spacetime", "spacetime", "tome"), ("frame", "frame", "tome")):
            variants[f"r={r} {label}"] = _patched(base, r, scope, method)
        variants[f"r={r} random_drop"] = _patched(base, r, "spacetime", "random_drop")
    return variants


def _patched(base, r, scope, method):
    model = copy.deepcopy(base)
    apply_patch(model, r=r, merge_scope=scope, method=method, prop_attn=False)
    return model


def matching_cost(dim: int, device, dtype, batch: int, repeats: int = 5) -> dict:
    """Time and memory of one ToMe matching at 1568 + 1 tokens (metric [B, N, C_head]), both scopes."""
    metric = torch.randn(batch, 1569, dim, device=device, dtype=dtype)
    groups = metric[:, 1:].reshape(batch * 8, 196, dim)
    out = {}
    for scope, fn in (
        ("spacetime", lambda: bipartite_soft_matching(metric, 100, protected=1)),
        ("frame", lambda: bipartite_soft_matching(groups, 12, protected=0)),
    ):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - start)
        score_bytes = (batch * 785 * 784 if scope == "spacetime" else batch * 8 * 98 * 98) * metric.element_size()
        out[scope] = {
            "ms": 1000 * sorted(times)[len(times) // 2],
            "score_matrix_mb": score_bytes / 2**20,
            "peak_cuda_mb": (peak_cuda_memory(fn, device) or 0) / 2**20 if device.type == "cuda" else None,
        }
    return out


def main() -> None:
    use_file_backend()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=list(DTYPES))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--compile", action="store_true", help="torch.compile(fullgraph=True) every variant")
    parser.add_argument("--out", default="results/video_throughput.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    rows = []
    print(f"{'model':<19}{'variant':>20}{'GFLOPs':>9}{'clips/s':>9}{'speedup':>9}{'ideal':>8}{'of ideal':>9}")
    for name in args.models:
        variants = variants_for(name, MODELS[name], device, dtype)
        clips = torch.randn(args.batch, 3, 16, 224, 224, device=device, dtype=dtype)
        for row in add_settings(
            compare_variants(variants, clips, rounds=args.rounds, compile=args.compile, model=name)
        ):
            rows.append(row)
            print(
                f"{name:<19}{row['variant']:>20}{row['gflops']:>9.1f}{row['samples_per_s']:>9.3f}"
                f"{row['speedup']:>8.2f}x{row['ideal_speedup']:>7.2f}x{row['speedup'] / row['ideal_speedup']:>9.2f}",
                flush=True,
            )
        write_json(rows, args.out, benchmark="video_throughput", args=vars(args))  # keep finished models
    dim = create_model("vit_large_patch16", depth=1).blocks[0].attn.head_dim
    cost = matching_cost(dim, device, dtype, args.batch)
    for scope, c in cost.items():
        print(f"matching at 1569 tokens, {scope}: {c['ms']:.2f} ms, score matrix {c['score_matrix_mb']:.2f} MB")
    path = write_json(rows, args.out, benchmark="video_throughput", args=vars(args), matching=cost)
    for name in args.models:
        plot = plot_speedup_vs_r(
            [row for row in rows if row["model"] == name], Path(path).with_suffix(f".{name}.png"), title=name
        )
        print(f"wrote {plot}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
