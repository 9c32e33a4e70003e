"""Throughput of ToMe on AudioMAE's ViT-B (1024 frames x 128 mel bins, 512 tokens) against the unpatched model
with the same fused attention, with FLOPs-ideal speedups; random dropping at the same r beside it.

Random weights (speed does not depend on them). Variants are timed in interleaved rounds (median). Prints a
table and writes JSON.

    python benchmarks/audio_throughput.py                      # CPU, float32, batch 1, one thread
    python benchmarks/audio_throughput.py --device cuda --dtype float16 --batch 64
    python benchmarks/audio_throughput.py --training --batch 4 --r 16 32    # training steps, with vs without merging

Training throughput is forward + backward + AdamW step (``tokenmerge.experiments.training.measure_training_throughput``,
learning rate 0 so every variant does the same work on the same weights), float32 (bf16 autocast with --amp).
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import torch

from tokenmerge.audio import apply_patch, create_model
from tokenmerge.experiments import write_json
from tokenmerge.experiments.benchmark import add_settings, compare_variants
from tokenmerge.experiments.plots import plot_speedup_vs_r, use_file_backend
from tokenmerge.experiments.training import TrainConfig, measure_training_throughput

R_VALUES = (8, 16, 24, 32, 40)
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def variants_for(name: str, r_values, device, dtype) -> tuple[dict, dict]:
    """The unpatched model, then ToMe and random dropping at every r (deep copies sharing nothing); returns the
    variants and the tokens each has left after its last block."""
    base = create_model(name).eval().to(device, dtype)
    tokens = 1 + base.patch_embed.num_patches
    variants, final_tokens = {"unpatched": base}, {"unpatched": tokens}
    for r in r_values:
        for method in ("tome", "random_drop"):
            model = copy.deepcopy(base)
            handle = apply_patch(model, r=r, method=method)
            variants[f"r={r} {method}"] = model
            final_tokens[f"r={r} {method}"] = handle.tokens_per_layer(tokens)[-1]
    return variants, final_tokens


def main() -> None:
    use_file_backend()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="vit_base_patch16")
    parser.add_argument("--r", type=int, nargs="+", default=list(R_VALUES))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=list(DTYPES))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--compile", action="store_true", help="torch.compile(fullgraph=True) every variant")
    parser.add_argument("--training", action="store_true", help="time training steps instead of inference")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast in training (CUDA)")
    parser.add_argument(
        "--out", default=None, help="JSON path (default results/audio_{inference,training}_throughput.json)"
    )
    args = parser.parse_args()
    args.out = args.out or f"results/audio_{'training' if args.training else 'inference'}_throughput.json"
    torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    if args.training:
        return training_table(args, device)
    variants, final_tokens = variants_for(args.model, args.r, device, dtype)
    spectrograms = torch.randn(args.batch, 1, 1024, 128, device=device, dtype=dtype)
    print(f"{'variant':>20}{'tokens':>8}{'GFLOPs':>9}{'clips/s':>9}{'speedup':>9}{'ideal':>8}{'of ideal':>9}")
    rows = add_settings(
        compare_variants(variants, spectrograms, rounds=args.rounds, compile=args.compile, model=args.model)
    )
    for row in rows:
        row["final_tokens"] = final_tokens[row["variant"]]
        print(
            f"{row['variant']:>20}{row['final_tokens']:>8}{row['gflops']:>9.1f}{row['samples_per_s']:>9.2f}"
            f"{row['speedup']:>8.2f}x{row['ideal_speedup']:>7.2f}x{row['speedup'] / row['ideal_speedup']:>9.2f}"
        )
    path = write_json(rows, args.out, benchmark="audio_throughput", args=vars(args))
    print(f"wrote {plot_speedup_vs_r(rows, Path(path).with_suffix('.png'), title=f'audio {args.model}, 512 tokens')}")
    print(f"wrote {path}")


def training_table(args, device) -> None:
    """Training samples/s of the unpatched model and ToMe at every r, interleaved rounds, median."""
    variants, final_tokens = variants_for(args.model, args.r, device, torch.float32)
    variants = {name: model.train() for name, model in variants.items() if "random_drop" not in name}

    def make_batch():
        return torch.randn(args.batch, 1, 1024, 128), (torch.rand(args.batch, 527) < 0.05).float()

    config = TrainConfig(multilabel=True, amp=args.amp, clip_grad=None)
    results = measure_training_throughput(variants, make_batch, config=config, warmup=1, rounds=args.rounds)
    base = results["unpatched"].samples_per_s
    print(f"{'variant':>20}{'tokens':>8}{'samples/s':>11}{'speedup':>9}")
    rows = []
    for name, result in results.items():
        rows.append(
            {
                **result.to_dict(),
                "variant": name,
                "final_tokens": final_tokens[name],
                "speedup": result.samples_per_s / base,
            }
        )
        print(f"{name:>20}{final_tokens[name]:>8}{result.samples_per_s:>11.2f}{result.samples_per_s / base:>8.2f}x")
    print(f"wrote {write_json(rows, args.out, benchmark='audio_training_throughput', args=vars(args))}")


if __name__ == "__main__":
    main()
