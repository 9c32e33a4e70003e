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
Before training, one process measures training samples/s of the model with and without merging.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

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
from .model import CONFIGS, EMBEDDED_ARCH, SpectrogramViT, create_model
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
    train_set = AudioDataset(index, preset, train=True)
    val_set = None
    if data["val"]:
        val_set = AudioDataset(read_index(load_index, data, "val", data["classes"] or index.classes), preset)
    return train_set, val_set, list(index.classes), index.multi_label


def architecture(model: dict) -> dict[str, int]:
    """embed_dim, depth and num_heads of the configured model: the named size's unless ``model.*`` overrides them."""
    embedded = model["name"] in ("embedded", "embedded_tome")
    return model_size(model, EMBEDDED_ARCH if embedded else CONFIGS[model["name"]])


def build_model(model: dict, num_classes: int, target_length: int) -> SpectrogramViT:
    """A SpectrogramViT for training: the embedded architecture or a named AudioMAE size, initialised as configured.

    ``model.checkpoint`` must match it (classes, input); ``model.pretrained`` loads the encoder of an AudioMAE
    pre-training checkpoint and draws the head anew.
    """
    sizes = dict(drop_path_rate=model["drop_path_rate"], **architecture(model))
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
    return train_config(cfg["train"])


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


main = training_main("tokenmerge.audio.conf", run_training)

if __name__ == "__main__":
    main()
