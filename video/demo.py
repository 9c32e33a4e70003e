"""Token Merging on the embedded moving-objects video ViT, offline, on CPU: both merge scopes and random dropping.

Sweeps r for ToMe in both scopes and for random dropping (its scores averaged over three seeds) on held-out
clips (generated in memory from the evaluation halves of the photographs, one view per clip), then prints a table
and writes results.json / results.csv, an accuracy-vs-throughput plot (accuracy_vs_throughput.png) and merge
pictures, frame grids in both scopes (merges.png), as the image and audio demos do:

    python -m tokenmerge.video.demo [--out outputs/demo/video] [--quick] [--weights FILE]
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from tokenmerge.experiments.cli import user_errors
from tokenmerge.experiments.data import Batch
from tokenmerge.experiments.demo import check_demo_arguments, demo_parser, seeded_settings, write_demo_outputs
from tokenmerge.experiments.evaluation import average_over_seeds
from tokenmerge.experiments.plots import use_file_backend
from tokenmerge.experiments.visualize import merge_gallery

from .embedded import WEIGHTS, load_embedded_model
from .evaluate import sweep
from .moving_objects import MEAN, STD, validation_clips
from .visualize import visualize_merges

#: From r=16: a 4-block model at r=8 removes 3% of the tokens a block sees, about what matching and merging cost
#: there; at r=72 the last blocks hold a few dozen tokens (the paper's video setting goes as far, 1568 -> a few).
#: r=96 merges half of every block's tokens after the first (257 -> 21 tokens).
R_VALUES = (16, 32, 48, 64, 72, 96)
#: (method, merge scope) pairs swept over ``R_VALUES``.
SETTINGS = (("tome", "spacetime"), ("tome", "frame"), ("random_drop", "spacetime"))
#: Seeds of the random baselines' draws; their rows report the mean (and each seed's score). Two, not the image
#: demo's three: each seed is one more pass over the clips, and `make demo` has a time budget.
SEEDS = (0, 1)
#: The weights the demo runs on (their hashes decide whether earlier results can be reused).
WEIGHTS_FILES = (WEIGHTS,)
#: ``--quick``: fewer clips, r values, seeds and timing rounds (the tests and ``tokenmerge demo --quick`` use it).
QUICK = dict(r_values=(32, 64), seeds=(0, 1), per_class=6, throughput_rounds=1)


def clip_batches(per_class: int, seed: int = 100, batch_size: int = 64) -> list[Batch]:
    """Held-out clips as batches of one view each: inputs [B, 1, 3, T, H, W]."""
    clips, labels = validation_clips(per_class=per_class, seed=seed)
    return [
        Batch(clips[i : i + batch_size, None], labels[i : i + batch_size], []) for i in range(0, len(clips), batch_size)
    ]


def merge_pictures(model: torch.nn.Module, clips: torch.Tensor, r: int, class_names: list[str]) -> list[Image.Image]:
    """Captioned frame grids of clips [B, 3, T, H, W], each in the spacetime scope and then the frame scope."""
    title = "embedded moving-objects video ViT, held-out clip {}"
    return [
        visualize_merges(
            model,
            clip,
            r=r,
            class_names=class_names,
            title=title.format(i) if scope == "spacetime" else "",
            merge_scope=scope,
            mean=(MEAN,) * 3,
            std=(STD,) * 3,
        )
        for i, clip in enumerate(clips)
        for scope in ("spacetime", "frame")
    ]


def run_demo(
    out_dir: str | Path = "outputs/demo/video",
    r_values=R_VALUES,
    settings=SETTINGS,
    seeds=SEEDS,
    per_class: int = 60,
    throughput_rounds: int = 9,
    weights: str | Path = WEIGHTS,
    prediction_dir: str | Path | None = None,
) -> list[dict]:
    """Run the sweep and write every artefact into ``out_dir``; returns the result rows.

    ``prediction_dir`` keeps each setting's predictions, so an interrupted run resumes (see ``sweep``)."""
    out_dir = Path(out_dir)
    torch.manual_seed(0)
    loaded = load_embedded_model(weights)
    model, classes = loaded.model, loaded.classes
    loader = clip_batches(per_class)
    points = seeded_settings([(method, r, scope) for method, scope in settings for r in r_values], seeds)
    rows = sweep(
        model,
        loader,
        points,
        throughput_batch=32,
        throughput_rounds=throughput_rounds,
        throughput_threads=1,
        prediction_dir=prediction_dir,
    )
    rows = average_over_seeds(rows)
    title = f"Embedded moving-objects video ViT ({len(classes)} classes, {rows[0]['samples']} held-out clips)"
    write_demo_outputs(
        rows,
        out_dir,
        {"accuracy_vs_throughput": (title, rows)},
        merge_gallery(merge_pictures(model, loader[0].inputs[:3, 0], r=32, class_names=classes)),
        model="embedded moving-objects video ViT",
        classes=classes,
        training=loaded.info,
    )
    return rows


@user_errors
def main(argv: list[str] | None = None) -> None:
    use_file_backend()
    parser = demo_parser("python -m tokenmerge.video.demo", __doc__, "outputs/demo/video", "clips")
    parser.add_argument("--weights", default=str(WEIGHTS), help="the model's weights (.safetensors)")
    args = parser.parse_args(argv)
    check_demo_arguments(args, [args.weights], f"python -m tokenmerge.video.train_embedded --out {args.weights}")
    if args.quick:
        run_demo(args.out, weights=args.weights, **QUICK)
    else:
        run_demo(args.out, weights=args.weights)


if __name__ == "__main__":
    main()
