"""The training job's settings: MAE's lr scaling rule (train.blr), the effective batch and lr the run prints, settings
an experiment leaves to the user, and the model-size settings."""

import pytest

from tokenmerge.experiments.cli import SettingError
from tokenmerge.experiments.training_job import describe_batch, model_size, scaled_lr, train_config


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


def test_the_effective_batch_and_lr_line_counts_processes_and_repeated_augmentation(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "64")
    config = train_config({"blr": 0.0024, "batch_size": 2, "repeat_aug": 2, "layer_decay": 0.75, "steps": 100})
    assert describe_batch(config).startswith(
        "effective batch 256 = train.batch_size 2 x 64 processes x train.repeat_aug 2; peak lr 0.0024 "
    )
    assert describe_batch(config).endswith("at step 100, layer decay 0.75)")


def test_model_size_overrides_the_named_size_and_checks_the_heads():
    base = {"embed_dim": 1024, "depth": 24, "num_heads": 16}
    assert model_size({"depth": 2, "embed_dim": None}, base) == {"embed_dim": 1024, "depth": 2, "num_heads": 16}
    with pytest.raises(SettingError, match="model.depth=0 is not valid"):
        model_size({"depth": 0}, base)
    with pytest.raises(SettingError, match="model.embed_dim=30 does not split into model.num_heads=16 heads"):
        model_size({"embed_dim": 30}, base)
