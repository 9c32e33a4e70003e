"""Hydra entry point for fine-tuning spectrogram ViTs with merging on (see audio/conf/train.yaml).

python -m tokenmerge.audio.train tome.r=8 model.checkpoint=audio/weights/speech_vit.safetensors train.steps=600
python -m tokenmerge.audio.train experiment=paper_audioset_vit_base_finetune model.pretrained=pretrained.pth ...
torchrun --nproc_per_node 2 -m tokenmerge.audio.train tome.r=8 hydra.run.dir=outputs/audio_train/ddp

The model is patched with ``tome.*`` before training, so every step runs with the merge schedule (proportional
attention, size-weighted pooling), as the ToMe paper fine-tunes its audio model. The loop is
:func:`tokenmerge.experiments.training.train` (AdamW, warm-up + cosine, label smoothing or BCE for multi-label sets,
mixup, SpecAugment from the dataset, DDP under torchrun, safetensors + resumable state in the output folder).
``model.pretrained`` starts from an AudioMAE pre-training checkpoint (the encoder; the decoder, mask token and final
norm are skipped and the head is drawn anew, as AudioMAE's fine-tuning does), ``model.checkpoint`` from weights of
this very model; ``model.embed_dim`` / ``depth`` / ``num_heads`` shrink a named size (smoke tests).
AudioMAE's fine-tuning augmentations are settings too, all off by default: ``model.mask_t_prob`` /
``model.mask_f_prob`` (patch masking of whole time columns / frequency rows in training forwards,
:class:`~tokenmerge.audio.model.PatchGridMasking`), ``data.mixup`` (per-sample waveform mixup, multi-label data) and
``data.roll_mag_aug`` / ``data.roll_shift`` (circular shift and gain; :class:`~tokenmerge.audio.data.AudioDataset`).
Before training, one process measures training samples/s of the model with and without merging.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from tokenmerge.core import schedule_spec
from tokenmerge.core.schedule import resolve_schedule
from tokenmerge.experiments.cli import SettingError
from tokenmerge.experiments.hydra_cli import training_main
from tokenmerge.experiments.training import TrainConfig
from tokenmerge.experiments.training_job import (
    check_data_paths,
    check_global_batch,
    check_initial_weights,
    load_initial_weights,
    model_size,
    read_index,
    tome_patch,
    train_config,
    train_with_merging,
    world_size,
)
from tokenmerge.experiments.validation import check_choice, check_tome

from .checkpoint import load_checkpoint, load_pretrained_encoder
from .data import AudioDataset, load_index
from .embedded import create_embedded_model
from .features import PRESETS, get_preset
from .model import CONFIGS, EMBEDDED_ARCH, PatchGridMasking, SpectrogramViT, create_model
from .patch import apply_patch
from .spoken_words import WORDS, SpokenWordsDataset


def build_datasets(data: dict, seed: int):
    """(train dataset, validation dataset or None, class names, multi-label?) from the ``data`` config."""
    if data["train"] is None:
        bank = data["utterances_per_word"]
        train_set = SpokenWordsDataset(
            data["train_size"], seed=seed, split="train", train=True, utterances_per_word=bank
        )
        val_set = SpokenWordsDataset(
            data["val_size"], seed=seed + 1, split="val", train=False, utterances_per_word=min(50, bank)
        )
        return train_set, val_set, list(WORDS), False
    preset = get_preset(data["preset"])
    index = read_index(load_index, data, "train", data["classes"])
    if data.get("mixup") and not index.multi_label:
        raise SettingError(
            f"data.mixup={data['mixup']} mixes targets into soft vectors, which only multi-label training takes; "
            f"data.train={data['train']} is single-label. Give a multi-label index (file,labels) or data.mixup=0."
        )
    augment = {key: data.get(key, default) for key, default in AUGMENT_DEFAULTS.items()}
    train_set = AudioDataset(index, preset, train=True, **augment)
    val_set = None
    if data["val"]:
        val_set = AudioDataset(read_index(load_index, data, "val", data["classes"] or index.classes), preset)
    return train_set, val_set, list(index.classes), index.multi_label


#: ``data.*`` waveform augmentations of the training set (AudioDataset's keywords) and their defaults: off.
AUGMENT_DEFAULTS = {"mixup": 0.0, "roll_mag_aug": False, "roll_shift": True}
#: ``model.*`` patch-masking probabilities (SpectrogramViT's keywords) and their defaults: off.
MASK_DEFAULTS = {"mask_t_prob": 0.0, "mask_f_prob": 0.0}


def masking(model: dict) -> dict[str, float]:
    """``model.mask_t_prob`` / ``model.mask_f_prob`` (0 when absent)."""
    return {key: model.get(key, default) or 0.0 for key, default in MASK_DEFAULTS.items()}


def architecture(model: dict) -> dict[str, int]:
    """embed_dim, depth and num_heads of the configured model: the named size's unless ``model.*`` overrides them."""
    embedded = model["name"] in ("embedded", "embedded_tome")
    return model_size(model, EMBEDDED_ARCH if embedded else CONFIGS[model["name"]])


def build_model(model: dict, num_classes: int, target_length: int) -> SpectrogramViT:
    """A SpectrogramViT for training: the embedded architecture or a named AudioMAE size, initialised as configured.

    ``model.checkpoint`` must match it (classes, input); ``model.pretrained`` loads the encoder of an AudioMAE
    pre-training checkpoint and draws the head anew.
    """
    sizes = dict(drop_path_rate=model["drop_path_rate"], **architecture(model), **masking(model))
    try:
        if model["name"] in ("embedded", "embedded_tome"):
            net = create_embedded_model(num_classes, **sizes)
        else:
            net = create_model(
                model["name"],
                num_classes=num_classes,
                target_length=target_length,
                global_pool=model["global_pool"],
                **sizes,
            )
    except ValueError as error:  # e.g. a model.mask_f_prob that keeps no frequency row of the patch grid
        raise SettingError(f"model: {error}") from None
    fits = f"{num_classes} classes, {net.target_length} frames"
    load_initial_weights(net, model, load_checkpoint, load_pretrained_encoder, fits)
    return net


def _random_batch(net: SpectrogramViT, multilabel: bool) -> Callable[[int], tuple[Tensor, Tensor]]:
    def make(batch: int) -> tuple[Tensor, Tensor]:
        inputs = torch.randn(batch, net.in_chans, net.target_length, net.num_mel_bins)
        classes = net.num_classes
        targets = (torch.rand(batch, classes) < 0.1).float() if multilabel else torch.randint(classes, (batch,))
        return inputs, targets

    return make


def check_config(cfg: dict) -> TrainConfig:
    """Check every setting before any data is read or model built; returns the training hyper-parameters.

    Raises :class:`~tokenmerge.experiments.cli.UserError` with one line on what to fix.
    """
    check_tome(cfg["tome"])
    data, model = cfg["data"], cfg["model"]
    check_choice(data["preset"], sorted(PRESETS), "data.preset")
    check_choice(model["name"], ["embedded", "embedded_tome", *sorted(CONFIGS)], "model.name")
    check_initial_weights(model, "Give an AudioMAE .pth or a .safetensors file.")
    architecture(model)
    check_data_paths(data)
    if data["train"] is None and cfg["train"].get("weighted_sampler"):
        raise SettingError("train.weighted_sampler weighs the samples of data.train by their labels; give data.train.")
    check_augmentations(data, model)
    return train_config(cfg["train"])


def check_augmentations(data: dict, model: dict) -> None:
    """``data.mixup`` a probability, ``data.roll_mag_aug`` / ``data.roll_shift`` booleans, both for data.train files
    only; ``model.mask_t_prob`` / ``model.mask_f_prob`` in [0, 1)."""
    mixup = data.get("mixup", 0.0)
    if isinstance(mixup, bool) or not isinstance(mixup, int | float) or not 0 <= mixup <= 1:
        raise SettingError(f"data.mixup={mixup!r}: give the probability in [0, 1] that a training clip is mixed.")
    for key in ("roll_mag_aug", "roll_shift"):
        if not isinstance(data.get(key, AUGMENT_DEFAULTS[key]), bool):
            raise SettingError(f"data.{key}={data[key]!r}: give true or false.")
    if data["train"] is None and (mixup or data.get("roll_mag_aug")):
        raise SettingError(
            "data.mixup and data.roll_mag_aug augment the waveforms of data.train's files; the embedded spoken words "
            "(data.train=null) are made without them: give data.train, or data.mixup=0 data.roll_mag_aug=false."
        )
    for key, prob in masking(model).items():
        if isinstance(prob, bool) or not isinstance(prob, int | float) or not 0 <= prob < 1:
            raise SettingError(f"model.{key}={prob!r}: give the fraction in [0, 1) of patch lines dropped in training.")


def run_training(cfg: dict, out_dir: str | Path) -> dict:
    """Train as configured (the ``train`` config as a dict); returns a summary (also written as train_results.json)."""
    check_config(cfg)
    data, tome = cfg["data"], cfg["tome"]
    train_set, val_set, classes, multilabel = build_datasets(data, cfg["train"]["seed"])
    size = len(train_set)
    where = f"data.train_size={size}" if data["train"] is None else f"data.train={data['train']} ({size} clips)"
    check_global_batch(size, cfg["train"]["batch_size"], where)
    torch.manual_seed(cfg["train"]["seed"])
    net = build_model(cfg["model"], len(classes), get_preset(data["preset"]).target_length)
    smoothing = {"label_smoothing": 0.0} if multilabel else {}  # multi-label sets train with plain BCE
    config = train_config(cfg["train"], **smoothing, multilabel=multilabel, out_dir=str(out_dir))
    summary = {"classes": classes, "tome": tome, "multilabel": multilabel, "world_size": world_size()}
    if isinstance(net.patch_drop, PatchGridMasking):
        summary["patch_masking"] = masked_tokens(net, tome)
    return train_with_merging(
        net,
        tome_patch(apply_patch, tome),
        _random_batch(net, multilabel),
        train_set,
        config,
        summary=summary,
        throughput_rounds=cfg["throughput_rounds"],
        out_dir=out_dir,
        val_set=val_set,
        num_classes=len(classes),
    )


def masked_tokens(net: SpectrogramViT, tome: dict) -> dict:
    """What patch masking leaves to training forwards: the kept grid, the tokens entering the blocks and the merge
    schedule for them (the summary's ``schedule`` is evaluation's, for the whole grid); printed on rank 0."""
    masker = net.patch_drop
    kept = masker.kept_grid
    tokens = net.num_prefix_tokens + kept[0] * kept[1]
    spec = schedule_spec(tome["r"], tome["inflection"], tome["ratio"])
    schedule = resolve_schedule(spec, len(net.blocks), tokens, net.num_prefix_tokens)
    if int(os.environ.get("RANK", "0")) == 0:
        print(
            f"patch masking in training: {kept[0]} of {masker.grid[0]} time columns x {kept[1]} of {masker.grid[1]} "
            f"frequency rows, {tokens} tokens with the class token enter the blocks; merge schedule {schedule}"
        )
    probs = {"mask_t_prob": masker.mask_t_prob, "mask_f_prob": masker.mask_f_prob}
    return probs | {"kept_grid": list(kept), "train_tokens": tokens, "train_schedule": schedule}


main = training_main("tokenmerge.audio.conf", run_training)

if __name__ == "__main__":
    main()
