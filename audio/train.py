"""Hydra entry point for fine-tuning spectrogram ViTs with merging on (see audio/conf/train.yaml).

python -m tokenmerge.audio.train tome.r=8 model.checkpoint=audio/weights/speech_vit.safetensors train.steps=600
torchrun --nproc_per_node 2 -m tokenmerge.audio.train tome.r=8 hydra.run.dir=outputs/audio_train/ddp

The model is patched with ``tome.*`` before training, so every step runs with the merge schedule (proportional
attention, size-weighted pooling), as the ToMe paper fine-tunes its audio model. The loop is
:func:`tokenmerge.experiments.training.train` (AdamW, warm-up + cosine, label smoothing or BCE for multi-label sets,
mixup, SpecAugment from the dataset, DDP under torchrun, safetensors + resumable state in the output folder).
Before training, one process measures training samples/s of the model with and without merging.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from tokenmerge.core import schedule_spec
from tokenmerge.experiments.cli import DataError, SettingError, user_errors
from tokenmerge.experiments.distributed import default_device
from tokenmerge.experiments.training import TrainConfig, measure_training_throughput, train
from tokenmerge.experiments.validation import check_choice, check_path, check_tome

from .checkpoint import load_checkpoint, load_pretrained_encoder
from .data import AudioDataset, load_index
from .embedded import create_embedded_model
from .features import PRESETS, get_preset
from .model import CONFIGS, SpectrogramViT, create_model
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
    index = _read_index(data, "train", data["classes"])
    train_set = AudioDataset(index, preset, train=True)
    val_set = None
    if data["val"]:
        val_set = AudioDataset(_read_index(data, "val", data["classes"] or index.classes), preset)
    return train_set, val_set, list(index.classes), index.multi_label


def _read_index(data: dict, key: str, classes):
    try:
        return load_index(data[key], classes)
    except (FileNotFoundError, ValueError) as error:
        raise DataError(f"data.{key}={data[key]}: {error}") from None


def build_model(model: dict, num_classes: int, target_length: int) -> SpectrogramViT:
    """A SpectrogramViT for training: the embedded architecture or a named AudioMAE size, initialised as configured."""
    if model["name"] in ("embedded", "embedded_tome"):
        net = create_embedded_model(num_classes, drop_path_rate=model["drop_path_rate"])
    else:
        net = create_model(
            model["name"],
            num_classes=num_classes,
            target_length=target_length,
            global_pool=model["global_pool"],
            drop_path_rate=model["drop_path_rate"],
        )
    if model["checkpoint"]:
        try:
            load_checkpoint(net, model["checkpoint"])
        except ValueError as error:
            raise SettingError(
                f"model.checkpoint={model['checkpoint']} does not fit the model ({num_classes} classes, "
                f"{target_length} frames): {error}"
            ) from None
    elif model["pretrained"]:
        skipped = load_pretrained_encoder(net, model["pretrained"])
        print(f"loaded the encoder of {model['pretrained']} ({len(skipped)} pre-training keys not used)")
    return net


def training_throughput(net: SpectrogramViT, tome: dict, config: TrainConfig, multilabel: bool, rounds: int) -> dict:
    """Training samples/s (forward, backward, AdamW) without and with the configured merging, in one run, on the
    device training will use."""
    device = default_device()
    net = net.to(device)
    merged = copy.deepcopy(net)
    apply_patch(merged, r=schedule_spec(tome["r"], tome["inflection"], tome["ratio"]), prop_attn=tome["prop_attn"])
    batch = min(config.batch_size, 32)

    def make_batch():
        inputs = torch.randn(batch, net.in_chans, net.target_length, net.num_mel_bins)
        classes = net.num_classes
        targets = (torch.rand(batch, classes) < 0.1).float() if multilabel else torch.randint(classes, (batch,))
        return inputs, targets

    results = measure_training_throughput({"unmerged": net, "merged": merged}, make_batch, config=config, rounds=rounds)
    return {name: result.samples_per_s for name, result in results.items()} | {"batch": batch, "device": str(device)}


def check_config(cfg: dict) -> TrainConfig:
    """Check every setting before any data is read or model built; returns the training hyper-parameters.

    Raises :class:`~tokenmerge.experiments.cli.UserError` with one line on what to fix.
    """
    check_tome(cfg["tome"])
    data, model = cfg["data"], cfg["model"]
    check_choice(data["preset"], sorted(PRESETS), "data.preset")
    check_choice(model["name"], ["embedded", "embedded_tome", *sorted(CONFIGS)], "model.name")
    for key in ("checkpoint", "pretrained"):
        if model[key]:
            check_path(model[key], f"model.{key}", "file", "Give an AudioMAE .pth or a .safetensors file.")
    for key in ("train", "val", "classes"):
        if data[key] and not Path(data[key]).exists():
            raise DataError(f"data.{key}={data[key]} does not exist; give a CSV index or a class-folder tree.")
    try:
        return TrainConfig(**cfg["train"])
    except (TypeError, ValueError) as error:
        raise SettingError(f"train: {error}") from None


def run_training(cfg: dict, out_dir: str | Path) -> dict:
    """Train as configured (the ``train`` config as a dict); returns a summary (also written as train_results.json)."""
    check_config(cfg)
    data, tome = cfg["data"], cfg["tome"]
    spec = schedule_spec(tome["r"], tome["inflection"], tome["ratio"])
    train_set, val_set, classes, multilabel = build_datasets(data, cfg["train"]["seed"])
    torch.manual_seed(cfg["train"]["seed"])
    net = build_model(cfg["model"], len(classes), get_preset(data["preset"]).target_length)
    smoothing = {"label_smoothing": 0.0} if multilabel else {}  # multi-label sets train with plain BCE
    config = TrainConfig(**{**cfg["train"], **smoothing}, multilabel=multilabel, out_dir=str(out_dir))
    summary: dict = {"classes": classes, "tome": tome, "multilabel": multilabel}
    if cfg["throughput_rounds"] and int(os.environ.get("WORLD_SIZE", "1")) == 1:
        summary["training_samples_per_s"] = training_throughput(net, tome, config, multilabel, cfg["throughput_rounds"])
        print(f"training throughput (samples/s): {summary['training_samples_per_s']}")
    handle = apply_patch(net, r=spec, prop_attn=tome["prop_attn"], method=tome["method"])
    result = train(net, train_set, config, val_dataset=val_set, num_classes=len(classes))
    summary |= {"schedule": handle.schedule(net.patch_embed.num_patches + 1), "metrics": result.metrics}
    result.write_summary(summary, out_dir)
    return summary


@hydra.main(version_base=None, config_path="conf", config_name="train")
@user_errors
def main(cfg: DictConfig) -> None:
    container = OmegaConf.to_container(cfg, resolve=True)
    run_training(container, container["out_dir"] or HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    main()
