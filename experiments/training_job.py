"""The parts of a modality's fine-tuning entry point (``python -m tokenmerge.<modality>.train``) that are the same
for every modality: reading the data indexes the config names, checking paths and the ``train`` section, the model
size and initial weights (``model.checkpoint`` or ``model.pretrained``), the global-batch check, the effective batch
and lr printed at the start, and the with/without-merging training throughput measured before training starts."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path

from torch import Tensor, nn

from tokenmerge.core import schedule_spec
from tokenmerge.core.schedule import clamp_note

from .checkpoint import UnreadableCheckpoint
from .cli import DataError, SettingError
from .data import count_notes, note_summary
from .distributed import default_device
from .training import train
from .training_recipe import TrainConfig, measure_training_throughput
from .validation import check_count, check_path

__all__ = [
    "SIZE_KEYS",
    "check_data_paths",
    "check_global_batch",
    "check_initial_weights",
    "describe_batch",
    "load_initial_weights",
    "merge_note",
    "model_size",
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


#: The model-size settings of ``model`` (null: the named architecture's), for a smaller model of the same kind.
SIZE_KEYS = ("embed_dim", "depth", "num_heads")


def model_size(model: Mapping, base: Mapping) -> dict[str, int]:
    """``model.embed_dim`` / ``model.depth`` / ``model.num_heads``, each null for ``base``'s (the named size's).

    Used by training and evaluation, so a model trained smaller (a smoke test of a recipe) is evaluated with the same
    settings. Raises :class:`~tokenmerge.experiments.cli.SettingError` for a value that is not a positive whole
    number or an ``embed_dim`` the heads do not divide.
    """
    size = {}
    for key in SIZE_KEYS:
        check_count(model.get(key), f"model.{key}", optional=True)
        size[key] = base[key] if model.get(key) is None else model[key]
    if size["embed_dim"] % size["num_heads"]:
        raise SettingError(
            f"model.embed_dim={size['embed_dim']} does not split into model.num_heads={size['num_heads']} heads: "
            "give an embed_dim that is a multiple of num_heads."
        )
    return size


def check_initial_weights(model: Mapping, hint: str) -> None:
    """``model.checkpoint`` (every weight of this model) and ``model.pretrained`` (a pre-training checkpoint's
    encoder): at most one, naming an existing file (``hint``: what file to give)."""
    if model.get("checkpoint") and model.get("pretrained"):
        raise SettingError(
            "model.checkpoint and model.pretrained are both set: give model.checkpoint to start from weights of this "
            "model (same classes), or model.pretrained to start from a pre-training checkpoint (encoder, new head)."
        )
    for key in ("checkpoint", "pretrained"):
        if model.get(key):
            check_path(model[key], f"model.{key}", "file", hint)


def _grouped(keys: list[str]) -> str:
    """Checkpoint keys by top-level module: ``mask_token, decoder_blocks.* (96), ...``."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(key.split(".")[0], []).append(key)
    return ", ".join(names[0] if len(names) == 1 else f"{top}.* ({len(names)})" for top, names in groups.items())


def load_initial_weights(
    net: nn.Module,
    model: Mapping,
    load_checkpoint: Callable[[nn.Module, str], object],
    load_pretrained_encoder: Callable[[nn.Module, str], list[str]],
    fits: str,
) -> None:
    """Initialise ``net`` from ``model.checkpoint`` (all weights) or ``model.pretrained`` (the encoder of a
    pre-training checkpoint, the head drawn anew; the keys not used are printed on rank 0); neither: unchanged.

    Args:
        net: the freshly built model.
        model: the ``model`` config section (checked with :func:`check_initial_weights`).
        load_checkpoint, load_pretrained_encoder: the modality's loaders.
        fits: the model's classes and input size, for the error when a file does not fit it.

    Raises:
        DataError: the file cannot be read as a checkpoint.
        SettingError: it does not fit the model (the message names the keys).
    """
    key = next((key for key in ("checkpoint", "pretrained") if model.get(key)), None)
    if key is None:
        return
    path = model[key]
    try:
        skipped = load_checkpoint(net, path) if key == "checkpoint" else load_pretrained_encoder(net, path)
    except UnreadableCheckpoint as error:
        raise DataError(f"model.{key}={path}: {error}") from None
    except ValueError as error:
        raise SettingError(f"model.{key}={path} does not fit the model ({fits}): {error}") from None
    if key == "pretrained" and _is_main():
        print(
            f"model.pretrained: loaded the encoder of {path}, head drawn anew (truncated normal, std 2e-5); "
            f"{len(skipped)} pre-training keys not used: {_grouped(skipped)}"
        )


def _is_main() -> bool:
    """Whether this is rank 0 of the run (torchrun's ``RANK``; the only process without torchrun)."""
    return int(os.environ.get("RANK", "0")) == 0


def describe_batch(config: TrainConfig) -> str:
    """One line on the run's effective batch and learning rate, as MAE-style recipes count them."""
    processes = world_size()
    batch = config.batch_size * processes * config.repeat_aug
    return (
        f"effective batch {batch} = train.batch_size {config.batch_size} x {processes} processes x "
        f"train.repeat_aug {config.repeat_aug}; peak lr {config.lr:.4g} (after {config.warmup_steps} warm-up steps, "
        f"cosine to {config.min_lr:g} at step {config.steps}"
        + (f", layer decay {config.layer_decay:g})" if config.layer_decay not in (None, 1.0) else ")")
    )


def tome_patch(apply_patch: Callable[..., object], tome: dict, **settings) -> Callable[[nn.Module], object]:
    """The ``tome`` config section as a function of the model: the modality's ``apply_patch`` with the section's
    schedule (``r``, ``inflection``, ``ratio``), ``prop_attn`` and ``method``, and ``settings`` (e.g. a merge scope)."""
    spec = schedule_spec(tome["r"], tome["inflection"], tome["ratio"])
    return lambda net: apply_patch(net, r=spec, prop_attn=tome["prop_attn"], method=tome["method"], **settings)


def merge_note(handle, num_tokens: int) -> str | None:
    """The sentence evaluation notes for a schedule the model clamps (:func:`tokenmerge.core.schedule.clamp_note`:
    a block merges at most half of its mergeable tokens), or None when every block removes what was asked."""
    groups = handle.adapter.num_groups(handle.model, handle.merge_scope)
    blocks = len(handle.adapter.blocks(handle.model))
    return clamp_note(handle.config.r, blocks, num_tokens, handle.protected, groups)


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
    """Print the effective batch and lr (:func:`describe_batch`, rank 0), measure training throughput with and
    without merging (one process, ``throughput_rounds`` > 0), patch ``net``, train it, and write ``summary`` with
    the schedule, final metrics, a clamped schedule's ``note``, the unreadable files skipped (``skipped_files``,
    ``skipped``) and the samples the datasets noted (``noted_files``: counts by kind, e.g. ``{"shorter than one clip,
    last frame repeated": 2}``; ``noted``: path, note and detail of each) as ``out_dir/train_results.json``; rank 0
    ends with one line for each.

    Args:
        net: the model to train (unpatched).
        patch: applies the configured merging; returns the handle.
        make_batch, throughput_rounds: see :func:`training_throughput` (0 rounds: not measured).
        train_set, config, val_set, collate_fn, num_classes: see :func:`tokenmerge.experiments.training.train`.
        summary: what the entry point records (classes, tome, ...); extended and returned.
        out_dir: where the summary goes (rank 0).
    """
    tokens = net.patch_embed.num_patches + net.num_prefix_tokens
    if _is_main():
        print(describe_batch(config))
    if throughput_rounds and world_size() == 1:
        rates = training_throughput(net, patch, make_batch, config, throughput_rounds)
        summary["training_samples_per_s"] = rates
        print(f"training throughput (samples/s): {rates}")
    handle = patch(net)
    note = merge_note(handle, tokens)
    if note and _is_main():
        print(f"note: {note}")
    result = train(net, train_set, config, val_dataset=val_set, collate_fn=collate_fn, num_classes=num_classes)
    summary |= {"schedule": handle.schedule(tokens), "metrics": result.metrics}
    if note:
        summary["note"] = note
    summary["skipped_files"] = len(result.skipped)
    summary["skipped"] = [{"path": s.path, "error": s.error} for s in result.skipped]
    summary["noted_files"] = count_notes(result.notes)
    summary["noted"] = [{"path": n.path, "note": n.note, "detail": n.detail} for n in result.notes]
    result.write_summary(summary, out_dir)
    if _is_main() and result.skipped:
        print(f"{len(result.skipped)} unreadable file{'s' if len(result.skipped) != 1 else ''} skipped in training")
    if _is_main():
        for kind, count in summary["noted_files"].items():
            print(note_summary(kind, count, "train_results.json", " in training"))
    if _is_main() and note:
        print(f"note: {note}")
    return summary
