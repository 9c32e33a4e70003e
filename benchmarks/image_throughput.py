"""Throughput of ToMe on timm ViTs against unpatched timm (same fused attention), with FLOPs-ideal speedups.

Random weights (speed does not depend on them). For each model, the unpatched timm model, the
patched one at several r and random token dropping at the paper's r (the floor for any reduction's
overhead: same schedule, no matching) are timed in interleaved rounds and the median taken; the paper's
settings are ViT-S r=13, ViT-B r=16, ViT-L r=8 and ViT-L@384 r=23. ``--compile`` wraps every variant,
the baseline included, in ``torch.compile(fullgraph=True)`` (default backend). Prints a table (speedup,
FLOPs-ideal speedup and their ratio) and writes JSON.

    python benchmarks/image_throughput.py                      # CPU, float32, one thread
    python benchmarks/image_throughput.py --models vit_small_patch16_224 --compile
    python benchmarks/image_throughput.py --device cuda --dtype float16 --batch 256
    python benchmarks/image_throughput.py --training --models vit_base_patch16_224 --batch 8   # training steps

Training throughput (``--training``) is forward + backward + AdamW step of the unpatched model and of ToMe at
every r (``tokenmerge.experiments.training.measure_training_throughput``: learning rate 0, so every variant does the
same work on the same weights; float32, bf16 autocast with --amp), with peak CUDA memory per step on a GPU.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import timm
import torch

from tokenmerge.experiments import write_json
from tokenmerge.experiments.benchmark import add_settings, compare_variants
from tokenmerge.experiments.plots import plot_speedup_vs_r, use_file_backend
from tokenmerge.experiments.training import TrainConfig, measure_training_throughput
from tokenmerge.image import apply_patch

MODELS = {  # name: (paper r, extra r values)
    "vit_small_patch16_224": (13, (8,)),
    "vit_base_patch16_224": (16, (8,)),
    "vit_large_patch16_224": (8, (4,)),
    "vit_large_patch16_384": (23, (12,)),
}
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def bench_model(name: str, r_values: list[int], paper_r: int, args) -> list[dict]:
    """Rows for one model: the unpatched baseline, ToMe at every r and random dropping at the paper's r."""
    dtype = DTYPES[args.dtype]
    base = timm.create_model(name, pretrained=False).eval().to(args.device, dtype)
    images = torch.randn(args.batch, 3, *base.patch_embed.img_size, device=args.device, dtype=dtype)
    variants = {"timm": base}
    for method, rs in (("tome", r_values), ("random_drop", [paper_r])):
        for r in rs:
            variants[f"r={r} {method}"] = copy.deepcopy(base)
            apply_patch(variants[f"r={r} {method}"], r=r, method=method)
    rows = compare_variants(variants, images, rounds=args.rounds, warmup=args.warmup, compile=args.compile, model=name)
    for row in add_settings(rows):
        row["paper_setting"] = row["variant"] == f"r={paper_r} tome"
    return rows


def training_rows(name: str, r_values: list[int], args) -> list[dict]:
    """Training steps/s rows for one model: unpatched and ToMe at every r, interleaved rounds, median."""
    base = timm.create_model(name, pretrained=False).to(args.device)
    variants = {"timm": base}
    for r in r_values:
        variants[f"r={r} tome"] = copy.deepcopy(base)
        apply_patch(variants[f"r={r} tome"], r=r)
    side = base.patch_embed.img_size

    def make_batch():
        return torch.randn(args.batch, 3, *side), torch.randint(base.num_classes, (args.batch,))

    config = TrainConfig(amp=args.amp, clip_grad=None)
    results = measure_training_throughput(variants, make_batch, config=config, warmup=args.warmup, rounds=args.rounds)
    baseline = results["timm"].samples_per_s
    rows = [
        result.to_dict() | {"model": name, "speedup": result.samples_per_s / baseline} for result in results.values()
    ]
    return add_settings(rows)


def print_training(rows: list[dict]) -> None:
    print(f"{'model':<24}{'variant':>17}{'samples/s':>11}{'speedup':>9}{'peak MB':>9}")
    for row in rows:
        memory = "-" if row["peak_memory_mb"] is None else f"{row['peak_memory_mb']:.0f}"
        print(f"{row['model']:<24}{row['variant']:>17}{row['samples_per_s']:>11.2f}{row['speedup']:>8.2f}x{memory:>9}")


def main() -> None:
    use_file_backend()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=list(DTYPES))
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--compile", action="store_true", help="torch.compile(fullgraph=True) every variant")
    parser.add_argument("--training", action="store_true", help="time training steps instead of inference")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast in training (CUDA)")
    parser.add_argument("--out", default=None, help="JSON path (default results/image_{inference,training}.json)")
    args = parser.parse_args()
    args.out = args.out or f"results/image_{'training' if args.training else 'inference'}_throughput.json"
    torch.set_num_threads(args.threads)
    if args.training:
        rows = [
            row
            for name in args.models
            for row in training_rows(name, sorted({*MODELS[name][1], MODELS[name][0]}), args)
        ]
        print_training(rows)
        print(f"wrote {write_json(rows, args.out, benchmark='image_training_throughput', args=vars(args))}")
        return
    rows = []
    print(f"{'model':<24}{'variant':>17}{'GFLOPs':>9}{'img/s':>9}{'speedup':>9}{'ideal':>8}{'of ideal':>9}")
    for name in args.models:
        paper_r, extra = MODELS[name]
        for row in bench_model(name, sorted({paper_r, *extra}), paper_r, args):
            rows.append(row)
            mark = " (paper)" if row["paper_setting"] else ""
            print(
                f"{name:<24}{row['variant']:>17}{row['gflops']:>9.2f}{row['samples_per_s']:>9.2f}"
                f"{row['speedup']:>8.2f}x{row['ideal_speedup']:>7.2f}x{row['of_ideal']:>9.2f}{mark}",
                flush=True,
            )
        path = write_json(rows, args.out, benchmark="image_throughput", args=vars(args))  # keep finished models
    for name in args.models:
        plot = plot_speedup_vs_r(
            [row for row in rows if row["model"] == name], Path(args.out).with_suffix(f".{name}.png"), title=name
        )
        print(f"wrote {plot}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
