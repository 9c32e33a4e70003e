"""Micro-benchmark: cost of ToMe's match + merge per block, against the block itself and random dropping.

For each scale (ViT-B: N=197, C=768; video: N=1568, C=768; the embedded demo models) it times, in interleaved
rounds on one thread (median over rounds, as these shared machines are noisy):
  * block:    one timm ViT block (attention + MLP, fused attention) on [B, N, C];
  * tome:     bipartite soft matching on the head-averaged keys [B, N, C/H] + size-weighted merge of [B, N, C];
  * tome (generic merge): the same, with the size-weighted merge that weighs every token (before the fast path);
  * dropping: random token dropping of the same r (the cheapest possible reduction);
  * metric:   the keys averaged over heads from a fused qkv output, as blocks compute it (``mean_over_heads``),
              and ``k.mean(1)`` on the same keys (what it replaced).
Prints a table and writes JSON (default results/merge_overhead.json).

    python benchmarks/merge_overhead.py [--rounds 25] [--threads 1] [--out results/merge_overhead.json]
"""

from __future__ import annotations

import argparse
import statistics

import torch
from timm.models.vision_transformer import Block

from tokenmerge.core import bipartite_soft_matching, merge_wavg, random_token_dropping
from tokenmerge.core.block import mean_over_heads
from tokenmerge.experiments import measure_interleaved, write_json

SCALES = [  # name, tokens, channels, heads, batch, r
    ("ViT-B image", 197, 768, 12, 8, 16),
    ("ViT-B video", 1568, 768, 12, 1, 64),
    ("embedded video", 257, 128, 4, 32, 16),  # the demo's clip ViT at its smallest swept r
    ("embedded audio", 65, 128, 4, 64, 4),  # the demo's spoken-words ViT at its smallest swept r
]


class GenericReduction:
    """A matching seen only through ``merge``: :func:`merge_wavg`'s generic path (weighs every token), which a
    :class:`~tokenmerge.core.Matching` skips with its own ``merge_weighted``."""

    def __init__(self, matching):
        self.num_tokens, self.r, self.merge = matching.num_tokens, matching.r, matching.merge


def bench_scale(name, tokens, channels, heads, batch, r, rounds):
    """Median seconds per call of block, ToMe step and dropping step at one scale."""
    block = Block(channels, heads).eval()
    x = torch.randn(batch, tokens, channels)
    metric = torch.randn(batch, tokens, channels // heads)
    size = torch.ones(batch, tokens, 1)
    qkv = torch.randn(batch, tokens, 3 * channels)
    keys = qkv.reshape(batch, tokens, 3, heads, channels // heads).permute(2, 0, 3, 1, 4)[1]  # [B, H, N, D] view
    cases = {
        "block": lambda: block(x),
        "tome": lambda: merge_wavg(bipartite_soft_matching(metric, r, protected=1), x, size),
        "generic": lambda: merge_wavg(GenericReduction(bipartite_soft_matching(metric, r, protected=1)), x, size),
        "dropping": lambda: merge_wavg(random_token_dropping(metric, r, protected=1), x, size),
        "metric": lambda: mean_over_heads(keys),
        "metric_mean": lambda: keys.mean(1),
    }
    timed = measure_interleaved(cases, batch_size=batch, rounds=rounds)
    med = {k: statistics.median(v.seconds_per_batch) for k, v in timed.items()}
    return {
        "scale": name,
        "tokens": tokens,
        "channels": channels,
        "batch": batch,
        "r": r,
        "block_ms": med["block"] * 1e3,
        "tome_ms": med["tome"] * 1e3,
        "tome_generic_merge_ms": med["generic"] * 1e3,
        "dropping_ms": med["dropping"] * 1e3,
        "tome_vs_block_pct": 100 * med["tome"] / med["block"],
        "dropping_vs_block_pct": 100 * med["dropping"] / med["block"],
        "metric_ms": med["metric"] * 1e3,
        "metric_k_mean_ms": med["metric_mean"] * 1e3,
        "rounds": rounds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="results/merge_overhead.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    rows = [bench_scale(*scale, rounds=args.rounds) for scale in SCALES]
    header = (
        f"{'scale':<14} {'N':>5} {'B':>3} {'r':>4} {'block ms':>9} {'ToMe ms':>8} {'ToMe/block':>10} {'generic':>8} "
        f"{'drop ms':>8} {'drop/block':>10} {'metric':>7} {'k.mean':>7}"
    )
    print(header)
    for row in rows:
        print(
            f"{row['scale']:<14} {row['tokens']:>5} {row['batch']:>3} {row['r']:>4} {row['block_ms']:>9.2f} "
            f"{row['tome_ms']:>8.3f} {row['tome_vs_block_pct']:>9.1f}% {row['tome_generic_merge_ms']:>8.3f} "
            f"{row['dropping_ms']:>8.3f} "
            f"{row['dropping_vs_block_pct']:>9.1f}% {row['metric_ms']:>7.3f} {row['metric_k_mean_ms']:>7.3f}"
        )
    path = write_json(rows, args.out, benchmark="merge_overhead", threads=args.threads, device="cpu")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
