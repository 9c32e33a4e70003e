"""Train the embedded photo-object ViT (fixed seed; reproduces ``image/weights/photo_vit.safetensors``).

    python -m tokenmerge.image.train_embedded [--steps 4000] [--out results/train_embedded/photo_vit.safetensors]

The default output is outside the package, so a trial run never overwrites the shipped weights; to replace them,
pass ``--out image/weights/photo_vit.safetensors`` explicitly.

The loop is the shared :func:`tokenmerge.experiments.training.train` (AdamW without decay on norms, biases and
embeddings, warm-up and cosine decay, label smoothing, gradient clipping), with stochastic depth and fresh
random images every step (``photo_objects.RandomObjects``, training stripes, random flips). Validation accuracy
on a fixed set of held-out-stripe images is printed as it goes. ``--tome-r`` trains with merging on (ToMe works
as a pooling layer in training). Under torchrun it trains with DistributedDataParallel (each process its share
of every batch of images; ``--batch-size`` per process) and rank 0 writes the weights.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torchvision.transforms.v2 as T
from torch.utils.data import TensorDataset

from tokenmerge.experiments.cli import user_errors
from tokenmerge.experiments.distributed import is_main_process
from tokenmerge.experiments.training import TrainConfig
from tokenmerge.experiments.training import train as train_loop
from tokenmerge.experiments.validation import check_count

from .embedded import DATA_CONFIG, WEIGHTS, create_embedded_model, save_embedded_model
from .patch import apply_patch
from .photo_objects import PHOTOS, RandomObjects, class_images, load_photos


def normalize_transform() -> T.Compose:
    """PIL image -> float tensor with the embedded model's normalization."""
    return T.Compose(
        [T.ToImage(), T.ToDtype(torch.float32, scale=True), T.Normalize(DATA_CONFIG["mean"], DATA_CONFIG["std"])]
    )


def train_transform() -> T.Compose:
    """Training augmentation (flips) and the embedded model's normalization."""
    return T.Compose([T.RandomHorizontalFlip(), normalize_transform()])


def validation_set(per_class: int, size: int, seed: int) -> TensorDataset:
    """A fixed set of held-out-stripe images: (image [3, size, size], class) pairs, ``per_class`` of each class."""
    normalize = normalize_transform()
    photos = list(load_photos().values())
    images, labels = [], []
    for label in range(len(photos)):
        images += [normalize(image) for image in class_images(photos, label, "val", per_class, size, seed)]
        labels += [label] * per_class
    return TensorDataset(torch.stack(images), torch.tensor(labels))


def train(
    steps: int = 4000,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 0.05,
    warmup: int = 100,
    seed: int = 0,
    tome_r: int = 0,
    eval_every: int = 500,
    workers: int = 1,
    out: str | Path | None = None,
) -> tuple[torch.nn.Module, float]:
    """Train from scratch; returns (model, final validation accuracy) and saves to ``out`` if given (no default:
    the shipped weights are only replaced when asked for by path; under torchrun rank 0 saves)."""
    torch.manual_seed(seed)
    classes = sorted(PHOTOS)
    size = DATA_CONFIG["input_size"][-1]
    model = create_embedded_model(len(classes), drop_path_rate=0.1)
    if tome_r:
        apply_patch(model, r=tome_r)
    config = TrainConfig(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        warmup_steps=warmup,
        label_smoothing=0.1,
        clip_grad=1.0,
        seed=seed,
        log_every=eval_every,
        eval_every=eval_every,
        num_workers=workers,
    )
    start = time.time()
    result = train_loop(
        model,
        RandomObjects(steps * batch_size, size, train_transform(), seed=seed),
        config,
        val_dataset=validation_set(per_class=20, size=size, seed=seed + 1),
        num_classes=len(classes),
    )
    accuracy = result.metrics["val_top1"]
    if out is not None and is_main_process():
        info = dict(
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            seed=seed,
            tome_r=tome_r,
            val_accuracy=accuracy,
            train_seconds=round(time.time() - start),
        )
        save_embedded_model(model, classes, out, **info)  # a patch adds no parameters: plain weights
    return model, accuracy


DEFAULT_OUT = Path("results/train_embedded/photo_vit.safetensors")


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The module docstring as written, and every option's default."""


@user_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tokenmerge.image.train_embedded", description=__doc__, formatter_class=_HelpFormatter
    )
    parser.add_argument("--steps", type=int, default=4000, help="optimizer steps")
    parser.add_argument("--batch-size", type=int, default=64, help="images per step")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (AdamW, warm-up + cosine)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the random training images")
    parser.add_argument("--tome-r", type=int, default=0, help="train with merging (r per block)")
    parser.add_argument("--workers", type=int, default=1, help="DataLoader worker processes")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help=f"weights file to write (shipped: {WEIGHTS})")
    args = parser.parse_args(argv)
    for name in ("steps", "batch_size"):
        check_count(getattr(args, name), f"--{name.replace('_', '-')}")
    check_count(args.tome_r, "--tome-r", minimum=0)
    check_count(args.workers, "--workers", minimum=0)
    _, accuracy = train(
        args.steps, args.batch_size, args.lr, seed=args.seed, tome_r=args.tome_r, workers=args.workers, out=args.out
    )
    if is_main_process():
        print(f"final validation accuracy {accuracy:.3f}; saved to {args.out}")


if __name__ == "__main__":
    main()
