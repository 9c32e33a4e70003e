"""Benchmark: how much of the FLOPs-ideal speedup the embedded models' blocks can give on this machine at all.

ToMe merges inside each block, between attention and the MLP, so block i's attention sees N_i tokens and its MLP
N_i - r_i. The FLOPs-ideal speedup counts attention as quadratic in the tokens; on a CPU at the embedded models'
sizes the time of both halves is closer to linear in them. This script times the two halves of one block of each
embedded demo model (its shipped weights, the demo's batch) at every token count the demo's sweep gives them, in
interleaved rounds on one thread (median over rounds), and reports per r:

  * FLOPs ideal:    FLOPs of the unmerged blocks / FLOPs of the merged blocks;
  * token ratio:    tokens the unmerged halves see / tokens the merged halves see;
  * timed ceiling:  time of the unmerged blocks / time of the merged blocks, summed from the timed halves: what
                    any reduction at that place (ToMe or random dropping) can gain in the blocks before matching,
                    merging, the patch embedding and the head cost anything;
  * us per token:   a block's time per token unmerged, and at the smallest counts the sweep gives it.

Prints a table and writes JSON (default results/block_scaling.json).

    python benchmarks/block_scaling.py [--rounds 15] [--threads 1] [--out results/block_scaling.json]
"""

from __future__ import annotations

import argparse
import statistics

import torch

from tokenmerge.audio import demo as audio_demo
from tokenmerge.audio.embedded import load_embedded_model as load_audio
from tokenmerge.core.schedule import resolve_schedule, tokens_per_layer
from tokenmerge.experiments import measure_interleaved, write_json
from tokenmerge.experiments.flops import count_flops
from tokenmerge.image import demo as image_demo
from tokenmerge.image.embedded import load_embedded_model as load_image
from tokenmerge.video import demo as video_demo
from tokenmerge.video.embedded import load_embedded_model as load_video

MODELS = {  # name: (loader, demo's r values, demo's timing batch)
    "embedded image": (load_image, image_demo.R_VALUES, 64),
    "embedded video": (load_video, video_demo.R_VALUES, 32),
    "embedded audio": (load_audio, audio_demo.R_VALUES, 32),
}


def halves_counts(r: int, depth: int, tokens: int) -> tuple[list[int], list[int]]:
    """Tokens the attention and the MLP of each of ``depth`` blocks see under a constant-r schedule (class token
    protected): ([N_0 .. N_{L-1}], [N_1 .. N_L])."""
    counts = tokens_per_layer(resolve_schedule(r, depth, tokens, protected=1), tokens)
    return counts[:-1], counts[1:]


def bench_model(name: str, loader, r_values, batch: int, rounds: int) -> list[dict]:
    """One row per r: FLOPs-ideal, token ratio and timed ceiling of the blocks of one embedded model."""
    model = loader().model
    block, depth = model.blocks[0], len(model.blocks)
    tokens = 1 + model.patch_embed.num_patches
    halves = {"attn": lambda x: x + block.attn(block.norm1(x)), "mlp": lambda x: x + block.mlp(block.norm2(x))}
    seen = {r: halves_counts(r, depth, tokens) for r in r_values}
    counts = sorted({n for attn, mlp in seen.values() for n in attn + mlp} | {tokens}, reverse=True)
    inputs = {n: torch.randn(batch, n, model.embed_dim) for n in counts}
    cases = {(half, n): (lambda f=f, x=inputs[n]: f(x)) for half, f in halves.items() for n in counts}
    timed = measure_interleaved(cases, batch_size=batch, rounds=rounds)
    seconds = {case: statistics.median(result.seconds_per_batch) for case, result in timed.items()}
    flops = {(half, n): count_flops(f, inputs[n]) for half, f in halves.items() for n in counts}

    def total(table: dict, attn: list[int], mlp: list[int]) -> float:
        return sum(table["attn", n] for n in attn) + sum(table["mlp", n] for n in mlp)

    full = [tokens] * depth
    rows = []
    for r, (attn, mlp) in seen.items():
        smallest = min(mlp)
        rows.append(
            {
                "model": name,
                "tokens": tokens,
                "depth": depth,
                "width": model.embed_dim,
                "batch": batch,
                "r": r,
                "attention_tokens": attn,
                "mlp_tokens": mlp,
                "flops_ideal": total(flops, full, full) / total(flops, attn, mlp),
                "token_ratio": 2 * depth * tokens / (sum(attn) + sum(mlp)),
                "timed_ceiling": total(seconds, full, full) / total(seconds, attn, mlp),
                "block_ms_unmerged": total(seconds, [tokens], [tokens]) * 1e3,
                "us_per_token_unmerged": total(seconds, [tokens], [tokens]) / (batch * tokens) * 1e6,
                "us_per_token_smallest": total(seconds, [smallest], [smallest]) / (batch * smallest) * 1e6,
                "smallest_tokens": smallest,
                "rounds": rounds,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="results/block_scaling.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    rows = [row for name, spec in MODELS.items() for row in bench_model(name, *spec, rounds=args.rounds)]
    print(
        f"{'model':<15} {'r':>3} {'tokens into blocks':<24} {'FLOPs ideal':>11} {'token ratio':>11} "
        f"{'timed ceiling':>13} {'us/token':>8} {'at N':>5} {'us/token':>8}"
    )
    for row in rows:
        seen = "-".join(str(n) for n in row["attention_tokens"] + row["mlp_tokens"][-1:])
        print(
            f"{row['model']:<15} {row['r']:>3} {seen:<24} {row['flops_ideal']:>10.2f}x {row['token_ratio']:>10.2f}x "
            f"{row['timed_ceiling']:>12.2f}x {row['us_per_token_unmerged']:>8.2f} {row['smallest_tokens']:>5} "
            f"{row['us_per_token_smallest']:>8.2f}"
        )
    path = write_json(rows, args.out, benchmark="block_scaling", threads=args.threads, device="cpu")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
