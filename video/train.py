"""Hydra entry point for fine-tuning spatiotemporal ViTs with merging on (see video/conf/train.yaml).

python -m tokenmerge.video.train tome.r=16 model.checkpoint=video/weights/clip_vit.safetensors train.steps=500
python -m tokenmerge.video.train experiment=paper_k400_vit_large_finetune model.pretrained=k400_400ep_rep4_mr9_16x4.pyth
torchrun --nproc_per_node 2 -m tokenmerge.video.train tome.r=16 hydra.run.dir=outputs/video_train/ddp

The model is patched with ``tome.*`` (r, schedule, merge scope, proportional attention, method) before training,
so every step runs with the merge schedule, as the ToMe paper fine-tunes its video models (Bolya et al., ICLR 2023,
Sec. 5: MAE-ST ViT-L fine-tuned on Kinetics-400 with merging on). The loop is
:func:`tokenmerge.experiments.training.train` (AdamW, warm-up + cosine, label smoothing, mixup, DDP under torchrun,
safetensors + resumable state in the output folder). Without ``data.train`` it trains on fresh moving-objects
clips (:mod:`tokenmerge.video.moving_objects`); with a CSV index or a class-folder tree it decodes one clip per
video and step, at a random time, a random square crop (or, with ``data.crop_scale`` / ``data.crop_aspect``,
MAE-ST's random resized crop) and flipped left-right half the time (MAE-ST's training sampling), with
``data.rand_augment`` / ``data.random_erasing`` MAE-ST's clip RandAugment and random erasing
(:mod:`tokenmerge.experiments.clip_augment`), and validates on the centre clip of each validation video.
``model.pretrained`` starts from an MAE-ST pre-training checkpoint (the encoder; the decoder and mask token are
skipped and the head is drawn anew, as MAE-ST's fine-tuning does), ``model.checkpoint`` from weights of this very
model; ``model.embed_dim`` / ``depth`` / ``num_heads`` shrink a named size (smoke tests).
Before training, one process measures training samples/s of the model with and without merging.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import av
import torch
from torch import Tensor
from torch.utils.data import Dataset

from tokenmerge.core import schedule_spec
from tokenmerge.core.schedule import check_schedule
from tokenmerge.experiments.cli import SettingError
from tokenmerge.experiments.clip_augment import ClipRandAugment, ClipRandomErasing, ClipRandomResizedCrop
from tokenmerge.experiments.data import Noted, Unreadable, collate_skipping, noted
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
from tokenmerge.experiments.validation import check_choice, check_count, check_tome
from tokenmerge.experiments.weighted_sampler import label_frequency_weights

from .checkpoint import load_checkpoint, load_pretrained_encoder
from .data import ClipSampling, VideoIndex, decode_video, frame_views, load_index, short_video_note
from .embedded import ARCH, create_embedded_model
from .model import CONFIGS, SpatiotemporalViT, create_model
from .moving_objects import CLASSES, FRAMES, SIZE, RandomClips
from .patch import SpatiotemporalAdapter, apply_patch
from .sampling import clip_sampling, input_size


class VideoClips(Dataset):
    """Item i is (clip [3, T, crop, crop], class index) of video i, or :class:`Unreadable` if it fails to decode.

    Training (``train=True``): a clip starting at a uniformly random time; ``rand_augment`` on its frames (before
    the crop, as MAE-ST util/kinetics.py:377-395 does); ``crop`` (MAE-ST's random resized crop, kinetics.py:338-362)
    or else a random square crop of the crop size; a left-right flip with probability 0.5; normalization;
    ``erasing`` (kinetics.py:432-442). All draws use torch's global RNG, seeded per process and loader worker by the
    training loop. Evaluation: the centre clip and the centre crop (``sampling`` with
    one view), never augmented. A video shorter than one clip (its last frame repeated, as MAE-ST does) gives its
    pair as :class:`Noted` (:func:`~tokenmerge.video.data.short_video_note`): training counts and reports it.
    """

    def __init__(
        self,
        index: VideoIndex,
        sampling: ClipSampling,
        train: bool = False,
        rand_augment: ClipRandAugment | None = None,
        erasing: ClipRandomErasing | None = None,
        crop: ClipRandomResizedCrop | None = None,
    ):
        self.samples, self.classes, self.train = index.samples, index.classes, train
        self.sampling = replace(sampling, num_temporal_views=1, num_spatial_crops=1)
        self.rand_augment, self.erasing, self.crop = rand_augment, erasing, crop

    def __len__(self) -> int:
        return len(self.samples)

    def sample_weights(self) -> Tensor:
        """[N] weights for the trainer's ``weighted_sampler``: 1000 / (count of the sample's class + 0.01)
        (:func:`~tokenmerge.experiments.weighted_sampler.label_frequency_weights`)."""
        labels = [label for _, label in self.samples]
        return label_frequency_weights(labels, len(self.classes) if self.classes else max(labels) + 1)

    def __getitem__(self, i: int) -> tuple[Tensor, int] | Noted | Unreadable:
        path, label = self.samples[i]
        try:
            frames, fps = decode_video(path, self.sampling.short_side)  # [N, H, W, 3]
            clip = self._random_clip(frames, fps) if self.train else frame_views(frames, fps, self.sampling)[0]
        except (av.FFmpegError, OSError, ValueError) as error:
            return Unreadable(path, f"{type(error).__name__}: {error}")
        return noted((clip, label), short_video_note(path, len(frames), fps, self.sampling))

    def _random_clip(self, frames, fps: float | None) -> Tensor:
        sampling, size = self.sampling, self.sampling.crop_size
        span = sampling.clip_span(fps)
        start = float(torch.rand(())) * max(len(frames) - span, 0)
        index = torch.linspace(start, start + span - 1, sampling.num_frames).clamp(0, len(frames) - 1).long()
        clip = torch.from_numpy(frames[index.numpy()]).permute(0, 3, 1, 2)  # [T, 3, H, W] uint8
        if self.rand_augment is not None:
            clip = self.rand_augment(clip)
        if self.crop is not None:
            clip = self.crop(clip)  # float [T, 3, size, size], still in [0, 255]
        else:
            y = int(torch.randint(clip.shape[2] - size + 1, ()))
            x = int(torch.randint(clip.shape[3] - size + 1, ()))
            clip = clip[:, :, y : y + size, x : x + size]
        if torch.rand(()) < 0.5:
            clip = clip.flip(3)
        clip = clip.permute(1, 0, 2, 3).float().div_(255)  # [3, T, size, size]
        mean, std = (torch.tensor(v).view(3, 1, 1, 1) for v in (sampling.mean, sampling.std))
        clip = clip.sub_(mean).div_(std)
        return self.erasing(clip) if self.erasing is not None else clip


def model_input(model: dict) -> tuple[int, int]:
    """(frames, frame side) of the configured model (``model.num_frames`` / ``model.img_size`` or its own)."""
    return input_size(model["name"], model.get("num_frames"), model.get("img_size"))


def build_datasets(data: dict, model: dict, seed: int):
    """(train dataset, validation dataset or None, class names, collate_fn) from the ``data`` config."""
    if data["train"] is None:
        train_set = RandomClips(data["train_size"], seed=seed, split="train")
        val_set = RandomClips(data["val_per_class"] * len(CLASSES), seed=seed + 1, split="val")
        return train_set, val_set, list(CLASSES), None
    sampling = clip_sampling(model["name"], *model_input(model), **(data["sampling"] or {}))
    index = read_index(load_index, data, "train", data["classes"])
    train_set = VideoClips(index, sampling, train=True, **clip_augmentation(data, sampling.crop_size))
    val_set = None
    if data["val"]:
        val_set = VideoClips(read_index(load_index, data, "val", data["classes"] or index.classes), sampling)
    classes = list(index.classes) if index.classes else [str(i) for i in range(max(c for _, c in index.samples) + 1)]
    return train_set, val_set, classes, collate_skipping


def clip_augmentation(data: dict, crop_size: int) -> dict:
    """VideoClips' ``rand_augment``, ``erasing`` and ``crop`` from ``data.rand_augment`` (timm's notation, null:
    off), ``data.random_erasing`` (a probability, 0: off) and ``data.crop_scale`` / ``data.crop_aspect`` (ranges
    of MAE-ST's random resized crop to ``crop_size``; both null: a random square crop)."""
    spec, erasing = data.get("rand_augment"), data.get("random_erasing") or 0.0
    scale, aspect = data.get("crop_scale"), data.get("crop_aspect")
    crop = None
    if scale is not None or aspect is not None:
        defaults = ClipRandomResizedCrop(crop_size)
        crop = ClipRandomResizedCrop(
            crop_size,
            tuple(scale) if scale is not None else defaults.scale,
            tuple(aspect) if aspect is not None else defaults.aspect,
        )
    return {
        "rand_augment": ClipRandAugment.from_spec(spec) if spec else None,
        "erasing": ClipRandomErasing(erasing) if erasing else None,
        "crop": crop,
    }


def architecture(model: dict) -> dict[str, int]:
    """embed_dim, depth and num_heads of the configured model: the named size's unless ``model.*`` overrides them."""
    return model_size(model, ARCH if model["name"] == "embedded" else CONFIGS[model["name"]])


def build_model(model: dict, num_classes: int) -> SpatiotemporalViT:
    """A SpatiotemporalViT for training: the embedded architecture or a named MAE-ST size, initialised as configured.

    The head has one output per class of the training data; ``model.checkpoint`` must match it (and the input size).
    ``model.pretrained`` loads the encoder of an MAE-ST pre-training checkpoint and draws the head anew.
    ``model.dropout`` (if not null) is the head's dropout.
    """
    frames, side = model_input(model)
    sizes = dict(num_classes=num_classes, num_frames=frames, img_size=side, drop_path_rate=model["drop_path_rate"])
    sizes |= architecture(model)
    if model.get("dropout") is not None:
        sizes["dropout"] = model["dropout"]
    if model["name"] == "embedded":
        net = create_embedded_model(**sizes)
    else:
        net = create_model(model["name"], **sizes)
    fits = f"{num_classes} classes, {frames} frames of {side} px"
    load_initial_weights(net, model, load_checkpoint, load_pretrained_encoder, fits)
    return net


def _random_batch(net: SpatiotemporalViT) -> Callable[[int], tuple[Tensor, Tensor]]:
    frames, side = net.patch_embed.input_size[:2]
    return lambda batch: (torch.randn(batch, 3, frames, side, side), torch.randint(net.num_classes, (batch,)))


def check_config(cfg: dict) -> TrainConfig:
    """Check every setting before any data is read or model built; returns the training hyper-parameters.

    Raises :class:`~tokenmerge.experiments.cli.UserError` with one line on what to fix.
    """
    check_tome(cfg["tome"], SpatiotemporalAdapter.merge_scopes)
    data, model = cfg["data"], cfg["model"]
    check_choice(model["name"], ["embedded", *sorted(CONFIGS)], "model.name")
    dropout = model.get("dropout")
    if dropout is not None and not (isinstance(dropout, int | float) and 0 <= dropout < 1):
        raise SettingError(f"model.dropout={dropout} must be in [0, 1) (or null for the architecture's).")
    for key in ("num_frames", "img_size"):
        check_count(model.get(key), f"model.{key}", optional=True)
    check_initial_weights(model, "Give an MAE-ST .pth or a .safetensors file.")
    frames, side = model_input(model)
    t_patch, patch = (ARCH["t_patch_size"], ARCH["patch_size"]) if model["name"] == "embedded" else (2, 16)
    if frames % t_patch or side % patch:
        raise SettingError(
            f"model {model['name']} with {frames} frames of {side} px does not split into tubelets of {t_patch} "
            f"frames x {patch} px: give model.num_frames a multiple of {t_patch} and model.img_size one of {patch}."
        )
    depth = architecture(model)["depth"]
    try:
        check_schedule(schedule_spec(cfg["tome"]["r"], cfg["tome"]["inflection"], cfg["tome"]["ratio"]), depth)
    except (TypeError, ValueError) as error:
        raise SettingError(f"tome: {error}") from None
    check_count(cfg["throughput_rounds"], "throughput_rounds", minimum=0)
    if data["train"] is None and cfg["train"].get("weighted_sampler"):
        raise SettingError("train.weighted_sampler weighs the samples of data.train by their labels; give data.train.")
    if data["train"] is None:
        check_count(data["train_size"], "data.train_size")
        check_count(data["val_per_class"], "data.val_per_class")
        if (frames, side) != (FRAMES, SIZE):
            raise SettingError(
                f"the embedded moving-objects clips are {FRAMES} frames of {SIZE} px but model {model['name']} takes "
                f"{frames} frames of {side} px: train on your videos (data.train=...) or use model=embedded."
            )
    check_data_paths(data)
    try:
        clip_augmentation(data, side)
    except (TypeError, ValueError) as error:
        raise SettingError(
            f"data.rand_augment / data.random_erasing / data.crop_scale / data.crop_aspect: {error}"
        ) from None
    try:
        clip_sampling(model["name"], *model_input(model), **(data["sampling"] or {}))
    except (TypeError, ValueError) as error:
        raise SettingError(f"data.sampling: {error}") from None
    return train_config(cfg["train"])


def run_training(cfg: dict, out_dir: str | Path) -> dict:
    """Train as configured (the ``train`` config as a dict); returns a summary (also written as train_results.json)."""
    check_config(cfg)
    data, tome = cfg["data"], cfg["tome"]
    train_set, val_set, classes, collate = build_datasets(data, cfg["model"], cfg["train"]["seed"])
    size = len(train_set)
    where = f"data.train_size={size}" if data["train"] is None else f"data.train={data['train']} ({size} videos)"
    check_global_batch(size, cfg["train"]["batch_size"], where)
    torch.manual_seed(cfg["train"]["seed"])
    net = build_model(cfg["model"], len(classes))
    config = train_config(cfg["train"], out_dir=str(out_dir))
    summary = {"classes": classes, "tome": tome, "world_size": world_size()}
    return train_with_merging(
        net,
        tome_patch(apply_patch, tome, merge_scope=tome["merge_scope"] or "spacetime"),
        _random_batch(net),
        train_set,
        config,
        summary=summary,
        throughput_rounds=cfg["throughput_rounds"],
        out_dir=out_dir,
        val_set=val_set,
        collate_fn=collate,
        num_classes=len(classes),
    )


main = training_main("tokenmerge.video.conf", run_training)

if __name__ == "__main__":
    main()
