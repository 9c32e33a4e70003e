"""experiment=paper_k400_vit_large_finetune: MAE-ST's official recipe composes with the training entry point and
its values reach the training settings, the model and the clip sampling."""

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from tokenmerge.experiments.cli import UserError
from tokenmerge.experiments.clip_augment import ClipRandomResizedCrop
from tokenmerge.video.train import build_model, check_config, clip_augmentation

RECIPE = "experiment=paper_k400_vit_large_finetune"


def _config(overrides):
    with initialize_config_module("tokenmerge.video.conf", version_base=None):
        return OmegaConf.to_container(compose("train", overrides=overrides), resolve=True)


@pytest.fixture
def index(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("clip.mp4,0\n")
    return path


def test_the_mae_st_recipe_reaches_the_train_config(index, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "8")
    cfg = _config([RECIPE, f"data.train={index}", "train.steps=1000", "train.warmup_steps=100"])
    config = check_config(cfg)
    assert (config.steps, config.warmup_steps, config.batch_size) == (1000, 100, 2)
    assert config.lr == pytest.approx(0.0024 * 2 * 8 * 2 / 256)  # blr x global batch x repeat_aug / 256
    assert (config.min_lr, config.weight_decay, config.layer_decay) == (1e-6, 0.05, 0.75)
    assert (config.label_smoothing, config.mixup_alpha, config.clip_grad, config.amp) == (0.1, 0.8, 5.0, False)
    assert (config.cutmix_alpha, config.mixup_prob, config.mixup_switch_prob, config.repeat_aug) == (1.0, 1.0, 0.5, 2)
    assert (cfg["data"]["rand_augment"], cfg["data"]["random_erasing"]) == ("rand-m7-mstd0.5-inc1", 0.25)
    augment = clip_augmentation(cfg["data"], 224)
    assert augment["crop"] == ClipRandomResizedCrop(224, (0.08, 1.0), (0.75, 1.3333))
    assert cfg["data"]["sampling"]["short_side"] == 256
    assert (augment["rand_augment"].magnitude, augment["rand_augment"].magnitude_std) == (7.0, 0.5)
    assert augment["rand_augment"].num_ops == 2 and augment["erasing"].probability == 0.25
    model, sampling = cfg["model"], cfg["data"]["sampling"]
    assert (model["name"], model["num_frames"], model["img_size"]) == ("vit_large_patch16", 16, 224)
    assert (model["drop_path_rate"], model["dropout"]) == (0.2, 0.3)
    assert (sampling["sampling_rate"], sampling["target_fps"]) == (4, 30.0)


def test_the_recipe_asks_for_the_steps_it_cannot_know(index):
    with pytest.raises(UserError, match=r"train.steps, train.warmup_steps not set: give a value"):
        check_config(_config([RECIPE, f"data.train={index}"]))


def test_model_dropout_sets_the_head_dropout():
    model = {"name": "embedded", "checkpoint": None, "drop_path_rate": 0.0, "dropout": 0.3}
    assert build_model(model, 3).head_drop.p == 0.3
    assert build_model({**model, "dropout": None}, 3).head_drop.p == 0.0  # the embedded architecture's
    with pytest.raises(UserError, match=r"model.dropout=1.5 must be in \[0, 1\)"):
        check_config(_config(["model.dropout=1.5"]))
