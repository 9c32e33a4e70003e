"""The training job's settings: MAE's lr scaling rule (train.blr) and settings an experiment leaves to the user."""

import pytest

from tokenmerge.experiments.cli import SettingError
from tokenmerge.experiments.training_job import scaled_lr, train_config


def test_blr_sets_lr_for_the_global_batch_of_this_run(monkeypatch):
    assert scaled_lr(2e-4, 4, 64) == pytest.approx(2e-4)
    monkeypatch.setenv("WORLD_SIZE", "2")
    config = train_config({"lr": 1.0, "blr": 0.0024, "batch_size": 8}, steps=10)
    assert config.lr == pytest.approx(0.0024 * 8 * 2 / 256) and config.steps == 10
    assert train_config({"lr": 0.5, "blr": None}).lr == 0.5  # null: train.lr as given
    with pytest.raises(SettingError, match="train: blr must be > 0 or null; got -1"):
        train_config({"blr": -1})


def test_a_setting_left_null_is_asked_for():
    with pytest.raises(SettingError, match=r"^train.steps not set: give a value on the command line"):
        train_config({"steps": None, "clip_grad": None, "layer_decay": None})
