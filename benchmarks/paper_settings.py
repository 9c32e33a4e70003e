"""One table for the paper's settings in every modality: unpatched vs ToMe vs random dropping, FLOPs-ideal beside.

For each setting (image ViT-S r=13, ViT-B r=16, ViT-L r=8, ViT-L@384 r=23; the MAE-ST video ViT-L at 1568 tokens
in both merge scopes; the AudioMAE ViT-B at 512 tokens) and each batch size, the unpatched model (same fused
attention), ToMe and random dropping at the same schedule are timed in one run in interleaved rounds (median),
eagerly and, with ``--compile``, as ``torch.compile(fullgraph=True, dynamic=False)``. Random weights (speed does
not depend on them). Prints one table (speedup, FLOPs-ideal, share of it, ToMe's gap to random dropping) and
writes JSON. The per-modality scripts sweep r and draw the speedup-vs-r plots.

    python benchmarks/paper_settings.py --settings image-vit-s --batches 1 4              # a few minutes on CPU
    python benchmarks/paper_settings.py --device cuda --dtype float16 --batches 1 64 --compile  # all, on a GPU
    python benchmarks/paper_settings.py --device cuda --dtype float16 --attention mask folded  # the bias's cost

``--attention mask folded`` times ToMe both with the log-size bias as SDPA's float mask and folded into extra head
channels (no mask: on CUDA, SDPA's flash kernel, as the unpatched baseline; see ``tokenmerge.core.attention``).
"""

from __future__ import annotations

import argparse
import copy
from dataclasses import dataclass

import timm
import torch

from tokenmerge.audio import apply_patch as audio_patch
from tokenmerge.audio import create_model as audio_model
from tokenmerge.core.attention import ATTENTION_KERNELS
from tokenmerge.experiments import write_json
from tokenmerge.experiments.benchmark import compare_variants
from tokenmerge.experiments.plots import use_file_backend
from tokenmerge.image import apply_patch as image_patch
from tokenmerge.video import apply_patch as video_patch
from tokenmerge.video import create_model as video_model

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class PaperSetting:
    """A model of the paper, its r, and how to build, patch and feed it."""

    modality: str
    model: str
    r: int
    scopes: tuple[str, ...] = ()  # video merge scopes to time ("" for the others)

    def build(self) -> torch.nn.Module:
        if self.modality == "image":
            return timm.create_model(self.model, pretrained=False)
        return (video_model if self.modality == "video" else audio_model)(self.model)

    def patch(self, model: torch.nn.Module, method: str, scope: str | None, attention: str = "mask") -> None:
        if self.modality == "image":
            image_patch(model, r=self.r, method=method, attention=attention)
        elif self.modality == "video":
            video_patch(model, r=self.r, method=method, merge_scope=scope, prop_attn=False, attention=attention)
        else:
            audio_patch(model, r=self.r, method=method, attention=attention)

    def inputs(self, model: torch.nn.Module, batch: int) -> torch.Tensor:
        if self.modality == "image":
            return torch.randn(batch, 3, *model.patch_embed.img_size)
        if self.modality == "video":
            return torch.randn(batch, 3, 16, 224, 224)
        return torch.randn(batch, 1, model.target_length, model.num_mel_bins)


SETTINGS = {
    "image-vit-s": PaperSetting("image", "vit_small_patch16_224", 13),
    "image-vit-b": PaperSetting("image", "vit_base_patch16_224", 16),
    "image-vit-l": PaperSetting("image", "vit_large_patch16_224", 8),
    "image-vit-l384": PaperSetting("image", "vit_large_patch16_384", 23),
    "video-vit-l": PaperSetting("video", "vit_large_patch16", 40, ("spacetime", "frame")),
    "audio-vit-b": PaperSetting("audio", "vit_base_patch16", 32),
}


def setting_rows(name: str, setting: PaperSetting, batch: int, args) -> list[dict]:
    """Rows for one setting and batch: the unpatched model, ToMe (each scope) and random dropping."""
    dtype = DTYPES[args.dtype]
    base = setting.build().eval().to(args.device, dtype)
    variants = {"unpatched": base}
    for scope in setting.scopes or (None,):
        for attention in args.attention:
            variant = " ".join(part for part in ("ToMe", scope, "" if attention == "mask" else attention) if part)
            variants[variant] = copy.deepcopy(base)
            setting.patch(variants[variant], "tome", scope, attention)
    variants["random drop"] = copy.deepcopy(base)
    setting.patch(variants["random drop"], "random_drop", setting.scopes[0] if setting.scopes else None)
    inputs = setting.inputs(base, batch).to(args.device, dtype)
    rows = compare_variants(
        variants, inputs, rounds=args.rounds, warmup=args.warmup, compile=args.compile, setting=name, r=setting.r
    )
    drop = next(row for row in rows if row["variant"] == "random drop")["samples_per_s"]
    for row in rows:
        row["model"] = setting.model
        row["behind_random_drop"] = None if row["variant"] == "unpatched" else 1 - row["samples_per_s"] / drop
    return rows


def main() -> None:
    use_file_backend()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8], help="batch 1 and a saturating batch")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=list(DTYPES))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--compile", action="store_true", help="torch.compile(fullgraph=True) every variant")
    parser.add_argument(
        "--attention",
        nargs="+",
        default=["mask"],
        choices=list(ATTENTION_KERNELS),
        help="how ToMe adds the log-size bias (each one given is timed; 'folded' keeps SDPA without a float mask)",
    )
    parser.add_argument("--out", default="results/paper_settings.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    header = f"{'setting':<15}{'batch':>6}{'variant':>22}{'items/s':>10}{'speedup':>9}{'ideal':>8}{'of ideal':>9}"
    print(header + f"{'vs drop':>9}")
    rows = []
    for name in args.settings:
        for batch in args.batches:
            for row in setting_rows(name, SETTINGS[name], batch, args):
                rows.append(row)
                behind = row["behind_random_drop"]
                gap = "" if behind is None else f"{-100 * behind:>8.1f}%"
                print(
                    f"{name:<15}{batch:>6}{row['variant']:>22}{row['samples_per_s']:>10.2f}{row['speedup']:>8.2f}x"
                    f"{row['ideal_speedup']:>7.2f}x{row['of_ideal']:>9.2f}{gap}",
                    flush=True,
                )
            path = write_json(rows, args.out, benchmark="paper_settings", args=vars(args))  # keep finished ones
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
