"""Benchmark: the cost of doing Token Merging's merge arithmetic in float32 for float16/bfloat16 models.

``merge_wavg`` computes ``x * size``, the sums and the division in float32 and casts back (in the token dtype,
float16 overflows and bfloat16 rounds sizes). This times, at the paper's settings (tokens, width, r of each
modality), in interleaved rounds (median) on one thread:
  * block:       one timm ViT block (attention + MLP, fused attention) on [B, N, C] in the low-precision dtype;
  * float32:     the library's size-weighted merge (float32 arithmetic, cast back), after the same matching;
  * token dtype: the same merge with the arithmetic in the token dtype (what merging did before; inexact);
and reports the extra cost per block of float32 arithmetic as a share of the block. Prints a table and writes JSON.

    python benchmarks/merge_precision.py [--dtypes bfloat16 float16] [--rounds 15] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics

import torch
from timm.models.vision_transformer import Block

from tokenmerge.core import bipartite_soft_matching, merge_wavg
from tokenmerge.experiments import measure_interleaved, write_json
from tokenmerge.experiments.throughput import dtype_name

SCALES = [  # name, tokens (class token included), channels, heads, batch, r: the paper's settings
    ("ViT-S/16 image", 197, 384, 6, 8, 13),
    ("ViT-B/16 image", 197, 768, 12, 8, 16),
    ("ViT-L/16@384 image", 577, 1024, 16, 1, 23),
    ("ViT-B audio", 513, 768, 12, 2, 24),
    ("ViT-L video", 1569, 1024, 16, 1, 64),
]
DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def merge_in_token_dtype(matching, x, size):
    """The size-weighted merge with its arithmetic in x's dtype (the inexact way, timed as the baseline)."""
    summed = matching.merge(x * size.to(x.dtype), mode="sum")
    size = matching.merge(size, mode="sum")
    return summed / size.clamp_min(1).to(x.dtype), size


def bench_scale(name, tokens, channels, heads, batch, r, dtype, device, rounds):
    """Median milliseconds of a block and of both merges at one scale."""
    block = Block(channels, heads).eval().to(device, dtype)
    x = torch.randn(batch, tokens, channels, device=device, dtype=dtype)
    metric = torch.randn(batch, tokens, channels // heads, device=device, dtype=dtype)
    size = torch.randint(1, 4, (batch, tokens, 1), device=device).float()
    matching = bipartite_soft_matching(metric, r, protected=1)
    cases = {
        "block": lambda: block(x),
        "float32": lambda: merge_wavg(matching, x, size),
        "token_dtype": lambda: merge_in_token_dtype(matching, x, size),
    }
    timed = measure_interleaved(cases, batch_size=batch, device=device, dtype=dtype, rounds=rounds)
    ms = {k: 1e3 * statistics.median(v.seconds_per_batch) for k, v in timed.items()}
    return {
        "scale": name,
        "dtype": dtype_name(dtype),
        "tokens": tokens,
        "channels": channels,
        "batch": batch,
        "r": r,
        "block_ms": ms["block"],
        "merge_float32_ms": ms["float32"],
        "merge_token_dtype_ms": ms["token_dtype"],
        "extra_vs_block_pct": 100 * (ms["float32"] - ms["token_dtype"]) / ms["block"],
        "rounds": rounds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=list(DTYPES))
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="results/merge_precision.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    rows = [
        bench_scale(*scale, dtype=DTYPES[name], device=args.device, rounds=args.rounds)
        for name in args.dtypes
        for scale in SCALES
    ]
    print(
        f"{'scale':<19} {'dtype':<9} {'N':>5} {'B':>2} {'r':>3} {'block ms':>9} {'fp32 merge':>10} "
        f"{'dtype merge':>11} {'extra/block':>11}"
    )
    for row in rows:
        print(
            f"{row['scale']:<19} {row['dtype']:<9} {row['tokens']:>5} {row['batch']:>2} {row['r']:>3} "
            f"{row['block_ms']:>9.2f} {row['merge_float32_ms']:>10.3f} {row['merge_token_dtype_ms']:>11.3f} "
            f"{row['extra_vs_block_pct']:>10.2f}%"
        )
    path = write_json(rows, args.out, benchmark="merge_precision", threads=args.threads, device=args.device)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
