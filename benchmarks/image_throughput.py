"""Throughput of ToMe on timm ViTs against unpatched timm (same fused attention), with FLOPs-ideal speedups.

Random weights (speed does not depend on them). For each model, the unpatched timm model and the
patched one at several r are timed in interleaved rounds and the median taken; the paper's settings
are ViT-S r=13, ViT-B r=16, ViT-L r=8 and ViT-L@384 r=23. Prints a table and writes JSON.

    python benchmarks/image_throughput.py                      # CPU, float32, one thread
    python benchmarks/image_throughput.py --device cuda --dtype float16 --batch 256
"""

from __future__ import annotations

import argparse
import copy

import timm
import torch

from tokenmerge.core import count_flops, measure_interleaved, write_json
from tokenmerge.image import apply_patch

MODELS = {  # name: (paper r, extra r values)
    "vit_small_patch16_224": (13, (8,)),
    "vit_base_patch16_224": (16, (8,)),
    "vit_large_patch16_224": (8, (4,)),
    "vit_large_patch16_384": (23, (12,)),
}
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def bench_model(name: str, r_values: list[int], paper_r: int, args) -> list[dict]:
    """Rows for one model: the unpatched baseline and every r."""
    dtype = DTYPES[args.dtype]
    base = timm.create_model(name, pretrained=False).eval().to(args.device, dtype)
    images = torch.randn(args.batch, 3, *base.patch_embed.img_size, device=args.device, dtype=dtype)
    variants, flops = {"timm": base}, {}
    for r in r_values:
        merged = copy.deepcopy(base)
        apply_patch(merged, r=r)
        variants[f"r={r}"] = merged
    for key, model in variants.items():
        flops[key] = count_flops(model, images[:1])
    speed = measure_interleaved(
        {key: (lambda m=model: m(images)) for key, model in variants.items()},
        batch_size=args.batch,
        device=args.device,
        dtype=dtype,
        rounds=args.rounds,
        warmup=args.warmup,
    )
    rows = []
    for key in variants:
        rows.append(
            {
                "model": name,
                "variant": key,
                "r": 0 if key == "timm" else int(key[2:]),
                "paper_setting": key == f"r={paper_r}",
                "images_per_s": speed[key].samples_per_s,
                "speedup": speed[key].samples_per_s / speed["timm"].samples_per_s,
                "gflops": flops[key] / 1e9,
                "ideal_speedup": flops["timm"] / flops[key],
                "batch": args.batch,
                "dtype": args.dtype,
                "device": speed[key].device,
                "threads": speed[key].threads,
                "rounds": args.rounds,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=list(DTYPES))
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="results/image_throughput.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    print(f"{'model':<24}{'variant':>8}{'GFLOPs':>9}{'img/s':>9}{'speedup':>9}{'ideal':>8}")
    for name in args.models:
        paper_r, extra = MODELS[name]
        for row in bench_model(name, sorted({paper_r, *extra}), paper_r, args):
            rows.append(row)
            mark = " (paper)" if row["paper_setting"] else ""
            print(
                f"{name:<24}{row['variant']:>8}{row['gflops']:>9.2f}{row['images_per_s']:>9.2f}"
                f"{row['speedup']:>8.2f}x{row['ideal_speedup']:>7.2f}x{mark}",
                flush=True,
            )
    path = write_json(rows, args.out, benchmark="image_throughput", args=vars(args))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
