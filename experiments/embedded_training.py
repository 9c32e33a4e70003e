"""Training the embedded default models: one recipe, one loop, one command line for every modality.

Each modality ships a small model trained here on its embedded task (photo objects, moving objects, spoken
words). They all train with :func:`tokenmerge.experiments.training.train` (AdamW without decay on norms,
biases and embeddings; warm-up and cosine decay; label smoothing 0.1; gradient clipping at 1; stochastic depth
from the model), on fresh random samples every step, validated on a fixed held-out set as they go. What a
modality adds is its data and, for video, the time controls. ``--tome-r`` trains with merging on (ToMe is a
pooling layer gradients pass through, Bolya et al., ICLR 2023, Sec. 4). Under torchrun every process trains its
share of each batch and rank 0 writes the weights.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from torch import nn
from torch.utils.data import Dataset

from .cli import HelpFormatter
from .training import TrainConfig, train
from .validation import check_count

__all__ = ["EmbeddedRecipe", "EmbeddedRun", "embedded_parser", "recipe_from_args", "train_embedded"]


@dataclass(frozen=True)
class EmbeddedRecipe:
    """The hyper-parameters of an embedded model's training run (saved with the weights).

    Attributes:
        steps: optimizer steps (one fresh batch each).
        batch_size: samples per step and process.
        lr: peak learning rate (AdamW, linear warm-up over ``warmup`` steps, then cosine decay to 0).
        weight_decay: AdamW decay on weight matrices (norms, biases, embeddings exempt).
        warmup: warm-up steps.
        seed: seeds the initial weights, the training samples' stream and dropout.
        tome_r: tokens merged per block during training (0: no merging).
        eval_every: validate (and log) every this many steps, and at the end.
        workers: DataLoader worker processes.
    """

    steps: int
    batch_size: int
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup: int = 150
    seed: int = 0
    tome_r: int = 0
    eval_every: int = 250
    workers: int = 1

    def train_config(self) -> TrainConfig:
        """The shared trainer's configuration for this recipe."""
        return TrainConfig(
            steps=self.steps,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            warmup_steps=self.warmup,
            label_smoothing=0.1,
            clip_grad=1.0,
            seed=self.seed,
            log_every=self.eval_every,
            eval_every=self.eval_every,
            num_workers=self.workers,
        )


@dataclass(frozen=True)
class EmbeddedRun:
    """What a run reached: the final validation top-1, the curve of (step, val top-1) and the seconds it took."""

    accuracy: float
    curve: list[tuple[int, float]]
    seconds: float

    def info(self, recipe: EmbeddedRecipe, **extra) -> dict:
        """The training record stored in the weights' metadata: recipe, results and ``extra``."""
        record = {k: v for k, v in asdict(recipe).items() if k not in ("workers", "eval_every")}
        curve = [[step, round(top1, 4)] for step, top1 in self.curve]
        return record | extra | {"val_accuracy": self.accuracy, "curve": curve, "train_seconds": round(self.seconds)}


def train_embedded(
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset,
    recipe: EmbeddedRecipe,
    *,
    num_classes: int,
    evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
) -> EmbeddedRun:
    """Train ``model`` in place (already patched if ``recipe.tome_r``) with the shared loop; returns the run.

    Args:
        model: maps a batch of inputs [B, ...] to logits [B, num_classes].
        train_set: at least ``recipe.steps * recipe.batch_size`` samples ``(input, class index)``.
        val_set: the held-out samples validated every ``recipe.eval_every`` steps (val_top1 of the curve).
        evaluate: extra metrics at each evaluation (see :func:`tokenmerge.experiments.training.train`).
    """
    start = time.time()
    result = train(
        model, train_set, recipe.train_config(), val_dataset=val_set, evaluate=evaluate, num_classes=num_classes
    )
    curve = [(int(entry["step"]), float(entry["val_top1"])) for entry in result.history if "val_top1" in entry]
    return EmbeddedRun(float(result.metrics["val_top1"]), curve, time.time() - start)


def embedded_parser(prog: str, description: str, defaults: EmbeddedRecipe, out: Path, shipped: Path):
    """The command line every ``train_embedded`` shares (recipe options with their defaults, ``--out``).

    Add modality options to the returned :class:`argparse.ArgumentParser`, then call :func:`recipe_from_args`.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description, formatter_class=HelpFormatter)
    helps = {
        "steps": "optimizer steps",
        "batch_size": "samples per step (per process under torchrun)",
        "lr": "peak learning rate (AdamW, warm-up + cosine)",
        "weight_decay": "AdamW weight decay (weight matrices only)",
        "warmup": "warm-up steps",
        "seed": "seed of the initial weights and the training samples",
        "tome_r": "train with merging (tokens merged per block)",
        "eval_every": "validate every this many steps",
        "workers": "DataLoader worker processes",
    }
    for field in fields(EmbeddedRecipe):
        flag = "--" + field.name.replace("_", "-")
        kind = float if field.name in ("lr", "weight_decay") else int
        parser.add_argument(flag, type=kind, default=getattr(defaults, field.name), help=helps[field.name])
    parser.add_argument("--out", default=str(out), help=f"weights file to write (shipped: {shipped})")
    return parser


def recipe_from_args(args: argparse.Namespace) -> EmbeddedRecipe:
    """The recipe of parsed :func:`embedded_parser` arguments; a count out of range is a one-line user error."""
    for name in ("steps", "batch_size", "eval_every"):
        check_count(getattr(args, name), "--" + name.replace("_", "-"))
    for name in ("warmup", "tome_r", "workers"):
        check_count(getattr(args, name), "--" + name.replace("_", "-"), minimum=0)
    return EmbeddedRecipe(**{field.name: getattr(args, field.name) for field in fields(EmbeddedRecipe)})
