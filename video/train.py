"""Hydra entry point for fine-tuning spatiotemporal ViTs with merging on (see video/conf/train.yaml).

python -m tokenmerge.video.train tome.r=16 model.checkpoint=video/weights/clip_vit.safetensors train.steps=500
torchrun --nproc_per_node 2 -m tokenmerge.video.train tome.r=16 hydra.run.dir=outputs/video_train/ddp

The model is patched with ``tome.*`` (r, schedule, merge scope, proportional attention, method) before training,
so every step runs with the merge schedule, as the ToMe paper fine-tunes its video models (Bolya et al., ICLR 2023,
Sec. 5: MAE-ST ViT-L fine-tuned on Kinetics-400 with merging on). The loop is
:func:`tokenmerge.experiments.training.train` (AdamW, warm-up + cosine, label smoothing, mixup, DDP under torchrun,
safetensors + resumable state in the output folder). Without ``data.train`` it trains on fresh moving-objects
clips (:mod:`tokenmerge.video.moving_objects`); with a CSV index or a class-folder tree it decodes one clip per
video and step, at a random time, a random crop and flipped left-right half the time (MAE-ST's training
sampling, without its scale jitter and RandAugment), and validates on the centre clip of each validation video.
Before training, one process measures training samples/s of the model with and without merging.
"""

from __future__ import annotations

import copy
import os
from dataclasses import replace
from pathlib import Path

import av
import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from torch import Tensor
from torch.utils.data import Dataset

from tokenmerge.core import schedule_spec
from tokenmerge.core.schedule import check_schedule
from tokenmerge.experiments.cli import DataError, SettingError, user_errors
from tokenmerge.experiments.data import Unreadable, collate_skipping
from tokenmerge.experiments.distributed import default_device
from tokenmerge.experiments.training import TrainConfig, measure_training_throughput, train
from tokenmerge.experiments.validation import check_choice, check_count, check_path, check_tome

from .checkpoint import load_checkpoint
from .data import ClipSampling, VideoIndex, decode_video, load_index, video_views
from .embedded import ARCH, create_embedded_model
from .model import CONFIGS, SpatiotemporalViT, create_model
from .models import clip_sampling, input_size
from .moving_objects import CLASSES, FRAMES, SIZE, RandomClips
from .patch import SpatiotemporalAdapter, apply_patch


class VideoClips(Dataset):
    """Item i is (clip [3, T, crop, crop], class index) of video i, or :class:`Unreadable` if it fails to decode.

    Training (``train=True``): a clip starting at a uniformly random time, a random square crop and a left-right
    flip with probability 0.5 (torch's global RNG, seeded per process and loader worker by the training loop).
    Evaluation: the centre clip and the centre crop (``sampling`` with one view).
    """

    def __init__(self, index: VideoIndex, sampling: ClipSampling, train: bool = False):
        self.samples, self.classes, self.train = index.samples, index.classes, train
        self.sampling = replace(sampling, num_temporal_views=1, num_spatial_crops=1)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Tensor, int] | Unreadable:
        path, label = self.samples[i]
        try:
            clip = self._random_clip(path) if self.train else video_views(path, self.sampling)[0]
        except (av.FFmpegError, OSError, ValueError) as error:
            return Unreadable(path, f"{type(error).__name__}: {error}")
        return clip, label

    def _random_clip(self, path: str) -> Tensor:
        sampling, size = self.sampling, self.sampling.crop_size
        frames, fps = decode_video(path, sampling.short_side)  # [N, H, W, 3]
        span = sampling.clip_span(fps)
        start = float(torch.rand(())) * max(len(frames) - span, 0)
        index = torch.linspace(start, start + span - 1, sampling.num_frames).clamp(0, len(frames) - 1).long()
        y = int(torch.randint(frames.shape[1] - size + 1, ()))
        x = int(torch.randint(frames.shape[2] - size + 1, ()))
        clip = torch.from_numpy(frames[index.numpy(), y : y + size, x : x + size])
        if torch.rand(()) < 0.5:
            clip = clip.flip(2)
        clip = clip.permute(3, 0, 1, 2).float().div_(255)  # [3, T, size, size]
        mean, std = (torch.tensor(v).view(3, 1, 1, 1) for v in (sampling.mean, sampling.std))
        return clip.sub_(mean).div_(std)


def model_input(model: dict) -> tuple[int, int]:
    """(frames, frame side) of the configured model (``model.num_frames`` / ``model.img_size`` or its own)."""
    return input_size(model["name"], model.get("num_frames"), model.get("img_size"))


def _read_index(data: dict, key: str, classes) -> VideoIndex:
    try:
        return load_index(data[key], classes)
    except (FileNotFoundError, ValueError) as error:
        raise DataError(f"data.{key}={data[key]}: {error}") from None


def build_datasets(data: dict, model: dict, seed: int):
    """(train dataset, validation dataset or None, class names, collate_fn) from the ``data`` config."""
    if data["train"] is None:
        train_set = RandomClips(data["train_size"], seed=seed, split="train")
        val_set = RandomClips(data["val_per_class"] * len(CLASSES), seed=seed + 1, split="val")
        return train_set, val_set, list(CLASSES), None
    sampling = clip_sampling(model["name"], *model_input(model), **(data["sampling"] or {}))
    index = _read_index(data, "train", data["classes"])
    train_set = VideoClips(index, sampling, train=True)
    val_set = None
    if data["val"]:
        val_set = VideoClips(_read_index(data, "val", data["classes"] or index.classes), sampling)
    classes = list(index.classes) if index.classes else [str(i) for i in range(max(c for _, c in index.samples) + 1)]
    return train_set, val_set, classes, collate_skipping


def build_model(model: dict, num_classes: int) -> SpatiotemporalViT:
    """A SpatiotemporalViT for training: the embedded architecture or a named MAE-ST size, initialised as configured.

    The head has one output per class of the training data; ``model.checkpoint`` must match it (and the input size).
    """
    frames, side = model_input(model)
    sizes = dict(num_classes=num_classes, num_frames=frames, img_size=side, drop_path_rate=model["drop_path_rate"])
    if model["name"] == "embedded":
        net = create_embedded_model(**sizes)
    else:
        net = create_model(model["name"], **sizes)
    if model["checkpoint"]:
        try:
            load_checkpoint(net, model["checkpoint"])
        except ValueError as error:
            raise SettingError(
                f"model.checkpoint={model['checkpoint']} does not fit the model ({num_classes} classes, {frames} "
                f"frames of {side} px): {error}"
            ) from None
    return net


def training_throughput(net: SpatiotemporalViT, tome: dict, config: TrainConfig, rounds: int) -> dict:
    """Training samples/s (forward, backward, AdamW) without and with the configured merging, in one run."""
    device = default_device()
    net = net.to(device)
    merged = copy.deepcopy(net)
    spec = schedule_spec(tome["r"], tome["inflection"], tome["ratio"])
    apply_patch(merged, r=spec, prop_attn=tome["prop_attn"], merge_scope=tome["merge_scope"] or "spacetime")
    batch = min(config.batch_size, 32)

    def make_batch():
        frames, side = net.patch_embed.input_size[:2]
        return torch.randn(batch, 3, frames, side, side), torch.randint(net.num_classes, (batch,))

    results = measure_training_throughput({"unmerged": net, "merged": merged}, make_batch, config=config, rounds=rounds)
    return {name: result.samples_per_s for name, result in results.items()} | {"batch": batch, "device": str(device)}


def check_config(cfg: dict) -> TrainConfig:
    """Check every setting before any data is read or model built; returns the training hyper-parameters.

    Raises :class:`~tokenmerge.experiments.cli.UserError` with one line on what to fix.
    """
    check_tome(cfg["tome"], SpatiotemporalAdapter.merge_scopes)
    data, model = cfg["data"], cfg["model"]
    check_choice(model["name"], ["embedded", *sorted(CONFIGS)], "model.name")
    for key in ("num_frames", "img_size"):
        check_count(model.get(key), f"model.{key}", optional=True)
    if model["checkpoint"]:
        check_path(model["checkpoint"], "model.checkpoint", "file", "Give an MAE-ST .pth or a .safetensors file.")
    frames, side = model_input(model)
    t_patch, patch = (ARCH["t_patch_size"], ARCH["patch_size"]) if model["name"] == "embedded" else (2, 16)
    if frames % t_patch or side % patch:
        raise SettingError(
            f"model {model['name']} with {frames} frames of {side} px does not split into tubelets of {t_patch} "
            f"frames x {patch} px: give model.num_frames a multiple of {t_patch} and model.img_size one of {patch}."
        )
    depth = ARCH["depth"] if model["name"] == "embedded" else CONFIGS[model["name"]]["depth"]
    try:
        check_schedule(schedule_spec(cfg["tome"]["r"], cfg["tome"]["inflection"], cfg["tome"]["ratio"]), depth)
    except (TypeError, ValueError) as error:
        raise SettingError(f"tome: {error}") from None
    check_count(cfg["throughput_rounds"], "throughput_rounds", minimum=0)
    if data["train"] is None:
        check_count(data["train_size"], "data.train_size")
        check_count(data["val_per_class"], "data.val_per_class")
        if (frames, side) != (FRAMES, SIZE):
            raise SettingError(
                f"the embedded moving-objects clips are {FRAMES} frames of {SIZE} px but model {model['name']} takes "
                f"{frames} frames of {side} px: train on your videos (data.train=...) or use model=embedded."
            )
    for key in ("train", "val", "classes"):
        if data[key] and not Path(data[key]).exists():
            raise DataError(f"data.{key}={data[key]} does not exist; give a CSV index or a class-folder tree.")
    try:
        clip_sampling(model["name"], *model_input(model), **(data["sampling"] or {}))
    except (TypeError, ValueError) as error:
        raise SettingError(f"data.sampling: {error}") from None
    try:
        return TrainConfig(**cfg["train"])
    except (TypeError, ValueError) as error:
        raise SettingError(f"train: {error}") from None


def run_training(cfg: dict, out_dir: str | Path) -> dict:
    """Train as configured (the ``train`` config as a dict); returns a summary (also written as train_results.json)."""
    check_config(cfg)
    data, tome = cfg["data"], cfg["tome"]
    spec = schedule_spec(tome["r"], tome["inflection"], tome["ratio"])
    scope = tome["merge_scope"] or "spacetime"
    train_set, val_set, classes, collate = build_datasets(data, cfg["model"], cfg["train"]["seed"])
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if len(train_set) < cfg["train"]["batch_size"] * world_size:
        size = len(train_set)
        where = f"data.train_size={size}" if data["train"] is None else f"data.train={data['train']} ({size} videos)"
        raise DataError(
            f"{where} is less than one global batch (train.batch_size={cfg['train']['batch_size']} x {world_size} "
            "processes): lower train.batch_size or use more data."
        )
    torch.manual_seed(cfg["train"]["seed"])
    net = build_model(cfg["model"], len(classes))
    config = TrainConfig(**cfg["train"], out_dir=str(out_dir))
    summary: dict = {"classes": classes, "tome": tome, "world_size": world_size}
    if cfg["throughput_rounds"] and world_size == 1:
        summary["training_samples_per_s"] = training_throughput(net, tome, config, cfg["throughput_rounds"])
        print(f"training throughput (samples/s): {summary['training_samples_per_s']}")
    handle = apply_patch(net, r=spec, prop_attn=tome["prop_attn"], method=tome["method"], merge_scope=scope)
    result = train(net, train_set, config, val_dataset=val_set, collate_fn=collate, num_classes=len(classes))
    tokens = net.num_prefix_tokens + net.patch_embed.num_patches
    summary |= {"schedule": handle.schedule(tokens), "metrics": result.metrics}
    result.write_summary(summary, out_dir)
    return summary


@hydra.main(version_base=None, config_path="conf", config_name="train")
@user_errors
def main(cfg: DictConfig) -> None:
    container = OmegaConf.to_container(cfg, resolve=True)
    run_training(container, container["out_dir"] or HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    main()
