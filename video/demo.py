"""Token Merging on the embedded moving-objects video ViT, offline, on CPU: both merge scopes and random dropping.

Sweeps r on held-out clips (generated in memory from the evaluation halves of the photographs, one view per
clip), then prints a table and writes results.json / results.csv, an accuracy-vs-throughput plot and frame
grids of merged groups in both scopes (merges.png):

    python -m tokenmerge.video.demo [--out outputs/demo/video] [--quick]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image

from tokenmerge.experiments.data import Batch
from tokenmerge.experiments.evaluation import Setting, format_table, write_results
from tokenmerge.experiments.plots import plot_accuracy_vs_speed, use_file_backend

from .embedded import WEIGHTS, load_embedded_model
from .evaluate import sweep
from .moving_objects import MEAN, STD, validation_clips
from .visualize import visualize_clip_merges

R_VALUES = (8, 16, 24, 32, 40)
SETTINGS = (("tome", "spacetime"), ("tome", "frame"), ("random_drop", "spacetime"))
#: The weights the demo runs on (their hashes decide whether earlier results can be reused).
WEIGHTS_FILES = (WEIGHTS,)
#: ``--quick``: fewer clips, r values and timing rounds (the tests and ``tokenmerge demo --quick`` use it).
QUICK = dict(r_values=(16, 32), per_class=6, throughput_rounds=1)


def clip_batches(per_class: int, seed: int = 100, batch_size: int = 64) -> list[Batch]:
    """Held-out clips as batches of one view each: inputs [B, 1, 3, T, H, W]."""
    clips, labels = validation_clips(per_class=per_class, seed=seed)
    return [
        Batch(clips[i : i + batch_size, None], labels[i : i + batch_size], []) for i in range(0, len(clips), batch_size)
    ]


def merge_gallery(model: torch.nn.Module, clips: torch.Tensor, r: int) -> Image.Image:
    """Frame grids of a few clips, each in the spacetime scope and then the frame scope, stacked vertically."""
    panels = [
        visualize_clip_merges(model, clip, r, merge_scope=scope, mean=(MEAN,) * 3, std=(STD,) * 3)
        for clip in clips
        for scope in ("spacetime", "frame")
    ]
    gallery = Image.new("RGB", (panels[0].width, sum(p.height for p in panels)))
    for i, panel in enumerate(panels):
        gallery.paste(panel, (0, i * panel.height))
    return gallery


def run_demo(
    out_dir: str | Path = "outputs/demo/video",
    r_values=R_VALUES,
    settings=SETTINGS,
    per_class: int = 60,
    throughput_rounds: int = 5,
    weights: str | Path = WEIGHTS,
    prediction_dir: str | Path | None = None,
) -> list[dict]:
    """Run the sweep and write every artefact into ``out_dir``; returns the result rows.

    ``prediction_dir`` keeps each setting's predictions, so an interrupted run resumes (see ``sweep``)."""
    out_dir = Path(out_dir)
    torch.manual_seed(0)
    model, classes = load_embedded_model(weights)
    loader = clip_batches(per_class)
    points = [Setting(method, r, scope) for method, scope in settings for r in r_values]
    rows = sweep(
        model,
        loader,
        points,
        throughput_batch=32,
        throughput_rounds=throughput_rounds,
        throughput_threads=1,
        prediction_dir=prediction_dir,
    )
    print(format_table(rows))
    json_path, csv_path = write_results(rows, out_dir, model="embedded moving-objects video ViT", classes=classes)
    title = f"Embedded moving-objects video ViT ({len(classes)} classes, {rows[0]['samples']} held-out clips)"
    plot_path = plot_accuracy_vs_speed(rows, out_dir / "accuracy_vs_throughput.png", title)
    gallery_path = out_dir / "merges.png"
    merge_gallery(model, loader[0].inputs[:3, 0], r=24).save(gallery_path)
    for path in (json_path, csv_path, plot_path, gallery_path):
        print(f"wrote {path}")
    return rows


def main() -> None:
    use_file_backend()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="outputs/demo/video")
    parser.add_argument("--weights", default=str(WEIGHTS))
    parser.add_argument("--quick", action="store_true", help="fewer clips, r values and timing rounds")
    args = parser.parse_args()
    if args.quick:
        run_demo(args.out, weights=args.weights, **QUICK)
    else:
        run_demo(args.out, weights=args.weights)


if __name__ == "__main__":
    main()
