"""The parts of a modality's fine-tuning entry point (``python -m tokenmerge.<modality>.train``) that are the same
for every modality: reading the data indexes the config names, checking paths and the ``train`` section, the
global-batch check, and the with/without-merging training throughput measured before training starts."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

from torch import Tensor, nn

from tokenmerge.core import schedule_spec

from .cli import DataError, SettingError
from .distributed import default_device
from .training import train
from .training_recipe import TrainConfig, measure_training_throughput

__all__ = [
    "check_data_paths",
    "check_global_batch",
    "read_index",
    "scaled_lr",
    "tome_patch",
    "train_config",
    "train_with_merging",
    "training_throughput",
    "world_size",
]


def world_size() -> int:
    """The number of processes of this run (torchrun's ``WORLD_SIZE``; 1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def tome_patch(apply_patch: Callable[..., object], tome: dict, **settings) -> Callable[[nn.Module], object]:
    """The ``tome`` config section as a function of the model: the modality's ``apply_patch`` with the section's
    schedule (``r``, ``inflection``, ``ratio``), ``prop_attn`` and ``method``, and ``settings`` (e.g. a merge scope)."""
    spec = schedule_spec(tome["r"], tome["inflection"], tome["ratio"])
    return lambda net: apply_patch(net, r=spec, prop_attn=tome["prop_attn"], method=tome["method"], **settings)


def read_index(load_index: Callable, data: dict, key: str, classes=None):
    """``load_index(data[key], classes)``; a missing or malformed index is a one-line error naming ``data.<key>``."""
    try:
        return load_index(data[key], classes)
    except (FileNotFoundError, ValueError) as error:
        raise DataError(f"data.{key}={data[key]}: {error}") from None


def check_data_paths(data: dict, keys: tuple[str, ...] = ("train", "val", "classes")) -> None:
    """Every ``data.<key>`` that is set names something that exists."""
    for key in keys:
        if data[key] and not Path(data[key]).exists():
            raise DataError(f"data.{key}={data[key]} does not exist; give a CSV index or a class-folder tree.")


def scaled_lr(blr: float, batch_size: int, processes: int, repeat_aug: int = 1) -> float:
    """MAE's learning-rate scaling rule: the absolute lr ``blr * eff_batch / 256`` for a base lr ``blr`` per 256
    samples and an effective batch of ``batch_size`` x ``processes`` x ``repeat_aug`` (facebookresearch/mae
    main_finetune.py:267-270, AudioMAE main_finetune_as.py:416-419; MAE-ST main_finetune.py:457-462 counts the
    repeated augmentation in the effective batch, so each of the k copies of a sample counts)."""
    return blr * batch_size * processes * repeat_aug / 256


def train_config(train: dict, **fixed) -> TrainConfig:
    """The ``train`` config section (and ``fixed`` values) as a :class:`TrainConfig`; a bad value is one line.

    ``train.blr`` (optional; null: off), when set, is a base lr per 256 samples: ``lr`` becomes
    :func:`scaled_lr` of it for this run's effective batch (``batch_size`` x :func:`world_size` x
    ``repeat_aug``), whatever ``train.lr`` says. A null where TrainConfig takes no None (``steps``, ...) is a
    value an experiment leaves to the user: the error asks for it.
    """
    settings = {**train, **fixed}
    required = [f.name for f in fields(TrainConfig) if f.default is not None]
    unset = [f"train.{name}" for name in required if name in settings and settings[name] is None]
    if unset:
        raise SettingError(f"{', '.join(unset)} not set: give a value on the command line, e.g. {unset[0]}=...")
    blr = settings.pop("blr", None)
    try:
        if blr is not None:
            if not blr > 0:
                raise ValueError(f"blr must be > 0 or null; got {blr!r}")
            batch = settings.get("batch_size", TrainConfig.batch_size)
            settings["lr"] = scaled_lr(blr, batch, world_size(), settings.get("repeat_aug", TrainConfig.repeat_aug))
        return TrainConfig(**settings)
    except (TypeError, ValueError) as error:
        raise SettingError(f"train: {error}") from None


def check_global_batch(samples: int, batch_size: int, what: str) -> None:
    """The training set (``what``, e.g. ``data.train=x.csv (12 videos)``) holds at least one global batch."""
    processes = world_size()
    if samples < batch_size * processes:
        raise DataError(
            f"{what} is less than one global batch (train.batch_size={batch_size} x {processes} processes): lower "
            "train.batch_size or use more data."
        )


def training_throughput(
    net: nn.Module,
    patch: Callable[[nn.Module], object],
    make_batch: Callable[[int], tuple[Tensor, Tensor]],
    config: TrainConfig,
    rounds: int,
) -> dict:
    """Training samples/s (forward, backward, AdamW) of ``net`` without and with merging, in one run.

    Args:
        net: the model to train (moved to the device training will use).
        patch: applies the configured merging to a copy of ``net``.
        make_batch: batch size -> (inputs [B, ...], targets [B] or [B, K]).
        config: loss and step settings; the batch is ``min(config.batch_size, 32)``.
        rounds: interleaved timed steps per model.

    Returns:
        {"unmerged": samples/s, "merged": samples/s, "batch": B, "device": the device}.
    """
    device = default_device()
    net = net.to(device)
    merged = copy.deepcopy(net)
    patch(merged)
    batch = min(config.batch_size, 32)
    results = measure_training_throughput(
        {"unmerged": net, "merged": merged}, lambda: make_batch(batch), config=config, rounds=rounds
    )
    return {name: result.samples_per_s for name, result in results.items()} | {"batch": batch, "device": str(device)}


def train_with_merging(
    net: nn.Module,
    patch: Callable[[nn.Module], object],
    make_batch: Callable[[int], tuple[Tensor, Tensor]],
    train_set,
    config: TrainConfig,
    *,
    summary: dict,
    throughput_rounds: int,
    out_dir: str | Path,
    val_set=None,
    collate_fn: Callable | None = None,
    num_classes: int,
) -> dict:
    """Measure training throughput with and without merging (one process, ``throughput_rounds`` > 0), patch ``net``,
    train it, and write ``summary`` with the schedule and final metrics as ``out_dir/train_results.json``.

    Args:
        net: the model to train (unpatched).
        patch: applies the configured merging; returns the handle.
        make_batch, throughput_rounds: see :func:`training_throughput` (0 rounds: not measured).
        train_set, config, val_set, collate_fn, num_classes: see :func:`tokenmerge.experiments.training.train`.
        summary: what the entry point records (classes, tome, ...); extended and returned.
        out_dir: where the summary goes (rank 0).
    """
    tokens = net.patch_embed.num_patches + net.num_prefix_tokens
    if throughput_rounds and world_size() == 1:
        rates = training_throughput(net, patch, make_batch, config, throughput_rounds)
        summary["training_samples_per_s"] = rates
        print(f"training throughput (samples/s): {rates}")
    handle = patch(net)
    result = train(net, train_set, config, val_dataset=val_set, collate_fn=collate_fn, num_classes=num_classes)
    summary |= {"schedule": handle.schedule(tokens), "metrics": result.metrics}
    result.write_summary(summary, out_dir)
    return summary
