"""Hydra entry point for fine-tuning image ViTs with merging on (see image/conf/train.yaml).

python -m tokenmerge.image.train tome.r=8 train.steps=500
python -m tokenmerge.image.train model=deit_small_patch16_224 model.checkpoint=/w/deit_s.safetensors tome.r=13 \
    data.train=/data/flowers/train data.val=/data/flowers/val
torchrun --nproc_per_node 2 -m tokenmerge.image.train tome.r=8 hydra.run.dir=outputs/image_train/ddp

The model (the embedded ViT or any timm ViT, weights as ``model.*`` says) is patched with ``tome.*`` before
training, so every step runs with the merge schedule. The loop is :func:`tokenmerge.experiments.training.train`.
Without ``data.train`` it trains on fresh photo-object images (:mod:`tokenmerge.image.photo_objects`); with an
ImageFolder tree it reads it with timm's training transform of the model's data config and validates on
``data.val`` with the evaluation transform. When the training data has another number of classes than the
checkpoint, the head is drawn again and a note says so. Before training, one process measures training samples/s
of the model with and without merging.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from timm.data import create_transform, resolve_data_config
from torch import Tensor, nn

from tokenmerge.experiments.cli import DataError, SettingError
from tokenmerge.experiments.data import collate_skipping
from tokenmerge.experiments.hydra_cli import training_main
from tokenmerge.experiments.training import TrainConfig
from tokenmerge.experiments.training_job import (
    check_global_batch,
    tome_patch,
    train_config,
    train_with_merging,
    world_size,
)
from tokenmerge.experiments.validation import check_count, check_tome

from .checkpoint import check_model, load_model
from .data import SkippingImageFolder, check_image_folder, eval_transform
from .embedded import DATA_CONFIG
from .patch import apply_patch
from .photo_objects import PHOTOS, RandomObjects
from .train_embedded import train_transform, validation_set


def build_datasets(data: dict, net: nn.Module, seed: int):
    """(train dataset, validation dataset or None, collate_fn) from the ``data`` config (``net`` gives the transforms);
    the classes are the photo objects' or ``data.train``'s sorted folders, as ImageFolder sorts them."""
    if data["train"] is None:
        size = DATA_CONFIG["input_size"][-1]
        train_set = RandomObjects(data["train_size"], size, train_transform(), seed=seed)
        return train_set, validation_set(data["val_per_class"], size, seed + 1), None
    training = create_transform(**resolve_data_config({}, model=net), is_training=True)
    train_set = SkippingImageFolder(str(data["train"]), transform=training)
    val_set = SkippingImageFolder(str(data["val"]), transform=eval_transform(net)) if data["val"] else None
    return train_set, val_set, collate_skipping


def build_model(model: dict, num_classes: int) -> nn.Module:
    """The configured model (weights as ``model.*`` says) with one output per training class.

    A model whose head has another number of outputs keeps its encoder and gets a new head (timm's
    ``reset_classifier``), and a note says so.
    """
    settings = {k: model[k] for k in ("pretrained", "checkpoint", "allow_download")}
    net = load_model(model["name"], **settings)
    if net.num_classes != num_classes:
        print(f"note: {model['name']} predicts {net.num_classes} classes, the data has {num_classes}: a new head")
        net.reset_classifier(num_classes)
    return net.train()


def _random_batch(net: nn.Module) -> Callable[[int], tuple[Tensor, Tensor]]:
    shape = tuple(resolve_data_config({}, model=net)["input_size"])
    return lambda batch: (torch.randn(batch, *shape), torch.randint(net.num_classes, (batch,)))


def check_config(cfg: dict) -> TrainConfig:
    """Check every setting before any data is read or model built; returns the training hyper-parameters.

    Raises :class:`~tokenmerge.experiments.cli.UserError` with one line on what to fix.
    """
    check_tome(cfg["tome"])
    model, data = cfg["model"], cfg["data"]
    check_model(model["name"], **{k: model[k] for k in ("pretrained", "checkpoint", "allow_download")})
    check_count(cfg["throughput_rounds"], "throughput_rounds", minimum=0)
    if data["train"] is None:
        check_count(data["train_size"], "data.train_size")
        check_count(data["val_per_class"], "data.val_per_class")
    else:
        classes = check_image_folder(data["train"], "data.train")
        if data["val"] and check_image_folder(data["val"], "data.val") != classes:
            raise DataError(
                f"data.val={data['val']} and data.train={data['train']} have different class folders: both need "
                "the same sub-folders, one per class."
            )
    if data["val"] and data["train"] is None:
        raise SettingError("data.val needs data.train: the embedded images are validated on their own held-out set.")
    return train_config(cfg["train"])


def run_training(cfg: dict, out_dir: str | Path) -> dict:
    """Train as configured (the ``train`` config as a dict); returns a summary (also written as train_results.json)."""
    check_config(cfg)
    data, tome = cfg["data"], cfg["tome"]
    torch.manual_seed(cfg["train"]["seed"])
    classes = sorted(PHOTOS) if data["train"] is None else check_image_folder(data["train"], "data.train")
    net = build_model(cfg["model"], len(classes))
    train_set, val_set, collate = build_datasets(data, net, cfg["train"]["seed"])
    size = len(train_set)
    where = f"data.train_size={size}" if data["train"] is None else f"data.train={data['train']} ({size} images)"
    check_global_batch(size, cfg["train"]["batch_size"], where)
    config = train_config(cfg["train"], out_dir=str(out_dir))
    summary = {"classes": classes, "tome": tome, "world_size": world_size()}
    return train_with_merging(
        net,
        tome_patch(apply_patch, tome),
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


main = training_main("tokenmerge.image.conf", run_training)

if __name__ == "__main__":
    main()
