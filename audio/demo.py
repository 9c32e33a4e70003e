"""Token Merging on the embedded spoken-words SpectrogramViTs, offline, on CPU: ToMe beside random dropping.

Two models are swept over r for ToMe and for random dropping (its scores averaged over three seeds) on noisy clips
of held-out voices: the one trained without merging and the same model fine-tuned with merging (the paper
fine-tunes its audio model with ToMe). Prints a table (with a model column) and writes results.json /
results.csv (both models), an accuracy-vs-throughput plot per model (accuracy_vs_throughput_<model>.png) and
merge pictures, spectrograms with their merged groups (merges.png), as the image and video demos do:

    python -m tokenmerge.audio.demo [--out outputs/demo/audio] [--quick]
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from tokenmerge.experiments.cli import user_errors
from tokenmerge.experiments.demo import check_demo_arguments, demo_parser, seeded_settings, write_demo_outputs
from tokenmerge.experiments.evaluation import average_over_seeds
from tokenmerge.experiments.plots import use_file_backend
from tokenmerge.experiments.visualize import merge_gallery

from .data import build_audio_loader
from .embedded import TRAIN_COMMAND, WEIGHTS, WEIGHTS_TOME, load_embedded_model
from .evaluate import sweep
from .spoken_words import SpokenWordsDataset
from .visualize import visualize_merges

#: From r=4: at r=2 the 6 blocks remove 3% of the tokens they see, about what matching and merging cost there;
#: r=12 is clamped in the last blocks (at most half of a block's tokens can merge); r=16, as in the image demo, is the
#: most a 65-token, 6-block model can merge (3 tokens left).
R_VALUES = (4, 6, 8, 10, 12, 16)
METHODS = ("tome", "random_drop")
#: Seeds of the random baselines' draws; their rows report the mean (and each seed's score). Two, not the image
#: demo's three: each seed is one more pass over the clips of both models, and `make demo` has a time budget.
SEEDS = (0, 1)
MODELS = {"trained without merging": WEIGHTS, "fine-tuned with merging": WEIGHTS_TOME}
#: The weights the demo runs on (their hashes decide whether earlier results can be reused).
WEIGHTS_FILES = (WEIGHTS, WEIGHTS_TOME)
#: ``--quick``: fewer clips, r values, seeds and timing rounds (the tests and ``tokenmerge demo --quick`` use it).
QUICK = dict(r_values=(4, 8), seeds=(0, 1), clips=40, throughput_rounds=1)


def evaluation_clips(clips: int, seed: int = 100) -> SpokenWordsDataset:
    """Noisy clips of the validation voices (not heard in training), features without SpecAugment."""
    return SpokenWordsDataset(clips, seed=seed, split="val", train=False, utterances_per_word=50)


def merge_pictures(
    model: torch.nn.Module, features: list[torch.Tensor], r: int, class_names: list[str]
) -> list[Image.Image]:
    """Captioned spectrograms with their merged groups, one per clip's features [1, T, F]."""
    title = "embedded spoken-words SpectrogramViT, held-out clip {}"
    return [
        visualize_merges(model, x, r=r, class_names=class_names, title=title.format(i)) for i, x in enumerate(features)
    ]


def run_demo(
    out_dir: str | Path = "outputs/demo/audio",
    r_values=R_VALUES,
    methods=METHODS,
    seeds=SEEDS,
    clips: int = 500,
    throughput_rounds: int = 15,
    models: dict[str, str | Path] = MODELS,
    prediction_dir: str | Path | None = None,
) -> list[dict]:
    """Sweep every model and write every artefact into ``out_dir``; returns the result rows (with a "model" field).

    15 timing rounds: a forward of 32 clips takes 60-120 ms, and over 5 rounds ToMe's speedup at r=12 measured
    1.54x, 1.72x and 2.18x in three runs (25 rounds: 1.72x, 1.74x, 1.89x); a round costs about a second per model.

    ``prediction_dir`` keeps each setting's predictions (a folder per model), so an interrupted run resumes."""
    out_dir = Path(out_dir)
    torch.manual_seed(0)
    data = evaluation_clips(clips)
    # features computed once, not once per setting and model (32 passes at the defaults; a pass of features costs
    # about what a pass of the model does, 1.5 s on 2 cores)
    loader = list(build_audio_loader(data, batch_size=100, workers=0))
    points = seeded_settings([(method, r) for method in methods for r in r_values], seeds)
    rows, plots, training = [], {}, {}
    for name, weights in models.items():
        loaded = load_embedded_model(weights)
        model, classes, info = loaded.model, loaded.classes, loaded.info
        model_rows = sweep(
            model,
            loader,
            points,
            throughput_batch=32,
            throughput_rounds=throughput_rounds,
            throughput_threads=1,
            prediction_dir=None if prediction_dir is None else Path(prediction_dir) / name.replace(" ", "_"),
        )
        model_rows = average_over_seeds(model_rows)  # per model: the two models' rows stay apart
        rows += [{"model": name, **row} for row in model_rows]
        training[name] = info
        samples = model_rows[0]["samples"]
        title = f"Spoken words, SpectrogramViT {name} ({len(classes)} words, {samples} clips of unseen voices)"
        plots[f"accuracy_vs_throughput_{name.replace(' ', '_')}"] = (title, model_rows)
    pictures = merge_pictures(model, [data[i][0] for i in range(3)], r=6, class_names=classes)
    write_demo_outputs(
        rows,
        out_dir,
        plots,
        merge_gallery(pictures, columns=len(pictures), gap=8),
        model="embedded spoken-words SpectrogramViTs",
        classes=classes,
        training=training,
    )
    return rows


@user_errors
def main(argv: list[str] | None = None) -> None:
    use_file_backend()
    parser = demo_parser("python -m tokenmerge.audio.demo", __doc__, "outputs/demo/audio", "clips")
    args = parser.parse_args(argv)
    check_demo_arguments(args, WEIGHTS_FILES, f"{TRAIN_COMMAND}; its --help shows both models")
    if args.quick:
        run_demo(args.out, **QUICK)
    else:
        run_demo(args.out)


if __name__ == "__main__":
    main()
