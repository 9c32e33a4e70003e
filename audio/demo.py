"""Token Merging on the embedded spoken-words SpectrogramViTs, offline, on CPU: ToMe beside random dropping.

Two models are swept over r on noisy clips of held-out voices: the one trained without merging and the same
model fine-tuned with merging (the paper fine-tunes its audio model with ToMe). Prints a table per model and
writes results.json / results.csv (both models), an accuracy-vs-throughput plot per model and spectrograms
with their merged groups (merges.png):

    python -m tokenmerge.audio.demo [--out outputs/demo/audio] [--quick]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image

from tokenmerge.experiments.evaluation import Setting, format_table, write_results
from tokenmerge.experiments.plots import plot_accuracy_vs_speed, use_file_backend

from .data import build_audio_loader
from .embedded import WEIGHTS, WEIGHTS_TOME, load_embedded_model
from .evaluate import sweep
from .spoken_words import SpokenWordsDataset
from .visualize import visualize_spectrogram_merges

R_VALUES = (2, 4, 6, 8, 10)
METHODS = ("tome", "random_drop")
MODELS = {"trained without merging": WEIGHTS, "fine-tuned with merging": WEIGHTS_TOME}
#: The weights the demo runs on (their hashes decide whether earlier results can be reused).
WEIGHTS_FILES = (WEIGHTS, WEIGHTS_TOME)
#: ``--quick``: fewer clips, r values and timing rounds (the tests and ``tokenmerge demo --quick`` use it).
QUICK = dict(r_values=(4, 8), clips=40, throughput_rounds=1)


def evaluation_clips(clips: int, seed: int = 100) -> SpokenWordsDataset:
    """Noisy clips of the validation voices (not heard in training), features without SpecAugment."""
    return SpokenWordsDataset(clips, seed=seed, split="val", train=False, utterances_per_word=50)


def merge_gallery(model: torch.nn.Module, features: list[torch.Tensor], r: int, classes: list[str]) -> Image.Image:
    """Spectrograms of a few clips with their merged groups, side by side."""
    panels = [visualize_spectrogram_merges(model, x, r, classes=classes) for x in features]
    gallery = Image.new("RGB", (sum(p.width + 8 for p in panels), panels[0].height), "white")
    for i, panel in enumerate(panels):
        gallery.paste(panel, (i * (panel.width + 8), 0))
    return gallery


def run_demo(
    out_dir: str | Path = "outputs/demo/audio",
    r_values=R_VALUES,
    methods=METHODS,
    clips: int = 500,
    throughput_rounds: int = 5,
    models: dict[str, str | Path] = MODELS,
    prediction_dir: str | Path | None = None,
) -> list[dict]:
    """Sweep every model and write every artefact into ``out_dir``; returns the result rows (with a "model" field).

    ``prediction_dir`` keeps each setting's predictions (a folder per model), so an interrupted run resumes."""
    out_dir = Path(out_dir)
    torch.manual_seed(0)
    data = evaluation_clips(clips)
    loader = build_audio_loader(data, batch_size=100, workers=0)
    points = [Setting(method, r) for method in methods for r in r_values]
    rows, paths = [], []
    for name, weights in models.items():
        model, classes, info = load_embedded_model(weights)
        print(f"\nSpectrogramViT {name} ({Path(weights).name}, trained with r={info.get('tome_r', 0)}):")
        model_rows = sweep(
            model,
            loader,
            points,
            throughput_batch=32,
            throughput_rounds=throughput_rounds,
            throughput_threads=1,
            prediction_dir=None if prediction_dir is None else Path(prediction_dir) / name.replace(" ", "_"),
        )
        print(format_table(model_rows))
        rows += [{"model": name, **row} for row in model_rows]
        samples = model_rows[0]["samples"]
        title = f"Spoken words, SpectrogramViT {name} ({len(classes)} words, {samples} clips of unseen voices)"
        plot_path = out_dir / f"accuracy_vs_throughput_{name.replace(' ', '_')}.png"
        paths.append(plot_accuracy_vs_speed(model_rows, plot_path, title))
    paths[:0] = write_results(rows, out_dir, model="embedded spoken-words SpectrogramViTs", classes=classes)
    gallery_path = out_dir / "merges.png"
    merge_gallery(model, [data[i][0] for i in range(3)], r=6, classes=classes).save(gallery_path)
    for path in (*paths, gallery_path):
        print(f"wrote {path}")
    return rows


def main() -> None:
    use_file_backend()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="outputs/demo/audio", help="output folder")
    parser.add_argument("--quick", action="store_true", help="fewer clips, r values and timing rounds")
    args = parser.parse_args()
    if args.quick:
        run_demo(args.out, **QUICK)
    else:
        run_demo(args.out)


if __name__ == "__main__":
    main()
