"""experiment=paper_audioset_vit_base_finetune: AudioMAE's official AudioSet-2M recipe composes with the training
entry point and its values reach the training settings and the model."""

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from tokenmerge.audio.train import check_config


def _config(overrides):
    with initialize_config_module("tokenmerge.audio.conf", version_base=None):
        return OmegaConf.to_container(compose("train", overrides=overrides), resolve=True)


def test_the_audiomae_recipe_reaches_the_train_config(tmp_path, monkeypatch):
    for name in ("train.csv", "eval.csv", "classes.csv"):
        (tmp_path / name).write_text("file,labels\n")
    monkeypatch.setenv("WORLD_SIZE", "64")  # the official 8 nodes x 8 GPUs
    data = [f"data.train={tmp_path / 'train.csv'}", f"data.val={tmp_path / 'eval.csv'}"]
    cfg = _config(["experiment=paper_audioset_vit_base_finetune", *data, f"data.classes={tmp_path / 'classes.csv'}"])
    config = check_config(cfg)
    assert (config.steps, config.warmup_steps, config.batch_size) == (78100, 7810, 4)
    assert config.lr == pytest.approx(2e-4)  # blr 2e-4 x (4 x 64) / 256
    assert (config.min_lr, config.weight_decay, config.layer_decay) == (1e-6, 5e-4, 0.75)
    assert (config.label_smoothing, config.mixup_alpha, config.clip_grad, config.amp) == (0.0, 0.0, None, True)
    assert (config.eval_every, config.checkpoint_every) == (781, 781)
    assert (config.weighted_sampler, config.epoch_samples, config.repeat_aug) == (True, 200000, 1)
    model = cfg["model"]
    assert (model["name"], model["drop_path_rate"], model["global_pool"]) == ("vit_base_patch16", 0.1, True)
    assert cfg["data"]["preset"] == "audioset"
