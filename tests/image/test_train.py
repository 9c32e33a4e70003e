"""Fine-tuning an image ViT with merging: the Hydra job on the embedded images and on an ImageFolder tree with
another class count (a new head, with a note); bad settings stop before any work with one line."""

import json
import shutil

import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from tokenmerge.experiments.cli import UserError
from tokenmerge.image import create_model, load_checkpoint
from tokenmerge.image.photo_objects import write_image_folder
from tokenmerge.image.train import run_training

TINY = [
    "tome.r=4",
    "train.steps=2",
    "train.batch_size=4",
    "train.eval_every=2",
    "train.log_every=1",
    "train.num_workers=0",
    "data.train_size=8",
    "data.val_per_class=1",
    "throughput_rounds=0",
]


def _config(overrides):
    with initialize_config_module("tokenmerge.image.conf", version_base=None):
        return OmegaConf.to_container(compose("train", overrides=overrides), resolve=True)


def _folder(tmp_path, name, classes=3):
    root = write_image_folder(tmp_path / f"all_{name}", name, per_class=2)
    kept = tmp_path / name
    for folder in sorted(p for p in root.iterdir() if p.is_dir())[:classes]:
        shutil.copytree(folder, kept / folder.name)
    return kept


def test_the_embedded_model_fine_tunes_with_merging_on_its_own_images(tmp_path):
    torch.set_num_threads(1)
    summary = run_training(_config([*TINY, "throughput_rounds=1"]), tmp_path)
    assert summary["schedule"] == [4] * 6 and summary["metrics"]["step"] == 2
    assert {"unmerged", "merged", "batch"} <= set(summary["training_samples_per_s"])
    assert json.loads((tmp_path / "train_results.json").read_text())["metrics"] == summary["metrics"]


def test_an_image_folder_with_other_classes_gets_a_new_head(tmp_path, capsys):
    torch.set_num_threads(1)
    train, val = _folder(tmp_path, "train"), _folder(tmp_path, "val")
    summary = run_training(_config([*TINY, f"data.train={train}", f"data.val={val}"]), tmp_path / "out")
    assert "predicts 21 classes, the data has 3: a new head" in capsys.readouterr().out
    assert summary["classes"] == sorted(p.name for p in train.iterdir()) and "val_top1" in summary["metrics"]
    load_checkpoint(create_model("embedded", num_classes=3), tmp_path / "out" / "model.safetensors")


def test_bad_settings_stop_before_any_work(tmp_path):
    train, other = _folder(tmp_path, "train"), _folder(tmp_path, "val", classes=2)
    for overrides, message in (
        ([f"data.val={other}", f"data.train={train}"], "different class folders"),
        ([f"data.val={other}"], "data.val needs data.train"),
        (["data.train=/nowhere"], "data.train=/nowhere"),
        (["train.lr=-1"], "train: Invalid TrainConfig"),
        (["tome.r=-2"], "tome.r=-2"),
    ):
        with pytest.raises(UserError, match=message):
            run_training(_config([*TINY, *overrides]), tmp_path / "never")
    assert not (tmp_path / "never").exists()
