"""The main demo (`make demo`): Token Merging on the embedded photo-object ViT, offline, on CPU.

Sweeps r for ToMe and for the random baselines (their scores averaged over three seeds) on 2,100 held-out
images, then prints a table and writes results.json / results.csv, an accuracy-vs-throughput plot
(accuracy_vs_throughput.png) and merge pictures (merges.png), as the video and audio demos do:

    python -m tokenmerge.image.demo [--out results/demo] [--quick]

Progress goes to stderr: bars on a terminal, one line per step when the output is a file or a pipe.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tokenmerge.experiments.cli import user_errors
from tokenmerge.experiments.demo import check_demo_arguments, demo_parser, seeded_settings, write_demo_outputs
from tokenmerge.experiments.evaluation import average_over_seeds
from tokenmerge.experiments.plots import use_file_backend
from tokenmerge.experiments.visualize import merge_gallery

from .data import build_eval_loader
from .embedded import WEIGHTS, load_embedded_model
from .evaluate import sweep
from .experiment import embedded_val_root
from .photo_objects import PHOTOS, load_photos, object_on_background
from .visualize import visualize_merges

#: r=2 is left out: there no method changes top-1 measurably (on 4,200 other held-out images ToMe, random
#: dropping and random merging all score within 0.05 points of the unmerged model).
R_VALUES = (4, 6, 8, 10, 12, 16)
METHODS = ("tome", "random_merge", "random_drop")
#: Seeds of the random baselines' draws; their rows report the mean (and each seed's score).
SEEDS = (0, 1, 2)
SHOWCASE = ("astronaut", "chelsea", "coffee", "rocket")
#: The weights the demo runs on (their hashes decide whether earlier results can be reused).
WEIGHTS_FILES = (WEIGHTS,)
#: ``--quick``: fewer samples, r values, seeds and timing rounds (the tests and ``tokenmerge demo --quick`` use it).
QUICK = dict(r_values=(4, 12), seeds=(0, 1), max_samples=210, throughput_rounds=2)


def merge_pictures(model: torch.nn.Module, r: int, seed: int = 0) -> list[Image.Image]:
    """Merge pictures of held-out images with objects from the ``SHOWCASE`` photos, one per photo (merges.png)."""
    rng = np.random.default_rng(seed)
    photos, names = list(load_photos().values()), sorted(PHOTOS)
    images = [object_on_background(photos, names.index(name), "val", rng, 32) for name in SHOWCASE]
    title = "embedded photo-object ViT, object from {}"
    return [
        visualize_merges(model, image, r=r, title=title.format(name), scale_to=192)
        for name, image in zip(SHOWCASE, images)
    ]


def run_demo(
    out_dir: str | Path = "results/demo",
    r_values=R_VALUES,
    methods=METHODS,
    seeds=SEEDS,
    per_class: int = 100,
    max_samples: int | None = None,
    throughput_rounds: int = 7,
    workers: int = 1,
    prediction_dir: str | Path | None = None,
) -> list[dict]:
    """Run the sweep and write every artefact into ``out_dir``; returns the result rows.

    ``prediction_dir`` keeps each setting's predictions, so an interrupted run resumes (see ``sweep``)."""
    out_dir = Path(out_dir)
    torch.manual_seed(0)
    loaded = load_embedded_model()
    model, classes = loaded.model, loaded.classes
    root = embedded_val_root(per_class=per_class)
    # decoded once, not once per setting (43 at the defaults; decoding is 1.3 s of an 11 s pass on 2 cores)
    loader = list(build_eval_loader(root, model, batch_size=128, workers=workers, max_samples=max_samples))
    settings = seeded_settings([(method, r) for method in methods for r in r_values], seeds)
    rows = sweep(
        model,
        loader,
        settings,
        throughput_batch=64,
        throughput_rounds=throughput_rounds,
        throughput_threads=1,
        prediction_dir=prediction_dir,
    )
    rows = average_over_seeds(rows)
    title = f"Embedded photo-object ViT ({len(classes)} classes, {rows[0]['samples']} held-out images)"
    write_demo_outputs(
        rows,
        out_dir,
        {"accuracy_vs_throughput": (title, rows)},
        merge_gallery(merge_pictures(model, r=8)),
        model="embedded photo-object ViT",
        classes=classes,
        training=loaded.info,
    )
    return rows


@user_errors
def main(argv: list[str] | None = None) -> None:
    use_file_backend()
    parser = demo_parser("python -m tokenmerge.image.demo", __doc__, "results/demo", "samples")
    args = parser.parse_args(argv)
    check_demo_arguments(args, [WEIGHTS], f"python -m tokenmerge.image.train_embedded --out {WEIGHTS}")
    if args.quick:
        run_demo(args.out, **QUICK)
    else:
        run_demo(args.out)


if __name__ == "__main__":
    main()
