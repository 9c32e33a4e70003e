"""experiment=paper_audioset_vit_base_finetune: AudioMAE's official AudioSet-2M recipe composes with the training
entry point and its values reach the training settings, the model and the training data (patch masking, waveform
mixup, roll and gain: off by default, on in the recipe), and a tiny run of the recipe trains."""

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from tokenmerge.audio import data as audio_data
from tokenmerge.audio.model import PatchGridMasking
from tokenmerge.audio.train import build_model, check_config, run_training
from tokenmerge.experiments.cli import UserError


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


def test_the_recipe_switches_on_audiomae_augmentations_that_are_off_by_default(tmp_path):
    cfg = _config(["experiment=paper_audioset_vit_base_finetune"])
    assert (cfg["model"]["mask_t_prob"], cfg["model"]["mask_f_prob"]) == (0.2, 0.2)  # README.md:40
    assert (cfg["data"]["mixup"], cfg["data"]["roll_mag_aug"], cfg["data"]["roll_shift"]) == (0.5, True, False)
    default = _config([])
    assert (default["model"]["mask_t_prob"], default["model"]["mask_f_prob"]) == (0.0, 0.0)
    assert (default["data"]["mixup"], default["data"]["roll_mag_aug"], default["data"]["roll_shift"]) == (
        0.0,
        False,
        True,
    )
    net = build_model(cfg["model"] | {"embed_dim": 16, "depth": 1, "num_heads": 2}, 527, 1024)
    assert isinstance(net.patch_drop, PatchGridMasking) and net.patch_drop.kept_grid == (51, 6)
    assert not isinstance(build_model(default["model"], 10, 128).patch_drop, PatchGridMasking)


def _multilabel_clips(folder: Path, count: int = 6) -> list[str]:
    """``count`` short WAV clips with one or two of three AudioSet-style labels: train.csv, eval.csv, classes.csv."""
    t = np.arange(8000) / 16000
    rows, mids = ["file,labels"], ["/m/a", "/m/b", "/m/c"]
    for i in range(count):
        soundfile.write(folder / f"{i}.wav", 0.3 * np.sin(2 * np.pi * (300 + 200 * i) * t), 16000)
        rows.append(f'{i}.wav,"{",".join(mids[: 1 + i % 2]) if i % 3 else mids[2]}"')
    (folder / "train.csv").write_text("\n".join(rows) + "\n")
    (folder / "eval.csv").write_text("\n".join(rows[:3]) + "\n")
    (folder / "classes.csv").write_text("index,mid,display_name\n0,/m/a,A\n1,/m/b,B\n2,/m/c,C\n")
    return [
        f"data.{key}={folder / name}"
        for key, name in (("train", "train.csv"), ("val", "eval.csv"), ("classes", "classes.csv"))
    ]


def test_a_tiny_run_of_the_recipe_trains_with_masking_mixup_and_roll_gain_on(tmp_path, capsys, monkeypatch):
    torch.set_num_threads(1)
    calls = {"mix_waveforms": 0, "roll_and_scale": 0}
    for name in calls:
        original = getattr(audio_data, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(audio_data, name, counted)
    tiny = ["model.embed_dim=16", "model.depth=2", "model.num_heads=2", "tome.r=8", "throughput_rounds=0"]
    steps = ["train.steps=2", "train.batch_size=2", "train.epoch_samples=4", "train.eval_every=2", "train.amp=false"]
    cfg = _config(["experiment=paper_audioset_vit_base_finetune", *_multilabel_clips(tmp_path), *tiny, *steps])
    cfg["train"]["num_workers"] = 0
    summary = run_training(cfg, tmp_path / "run")
    assert summary["metrics"]["step"] == 2 and np.isfinite(summary["metrics"]["loss"])
    assert "val_mAP" in summary["metrics"] and summary["multilabel"]
    masking = summary["patch_masking"]
    assert (masking["kept_grid"], masking["train_tokens"], masking["train_schedule"]) == ([51, 6], 307, [8, 8])
    assert "patch masking in training: 51 of 64 time columns x 6 of 8 frequency rows" in capsys.readouterr().out
    assert calls["mix_waveforms"] > 0 and calls["roll_and_scale"] >= 4 + calls["mix_waveforms"]  # both mixed clips


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.mixup=0.5", "data.mixup.*single-label"),
        ("model.mask_t_prob=1.0", r"model.mask_t_prob=1.0"),
        ("model.mask_f_prob=0.9", r"model: mask_f_prob=0.9 keeps none of the 1 patch lines of a 64 x 1 grid"),
        ("data.mixup=2", r"data.mixup=2"),
        ("data.roll_mag_aug=yes", r"data.roll_mag_aug='yes'"),
    ],
)
def test_bad_augmentation_settings_are_one_user_error(tmp_path, override, message):
    t = np.arange(8000) / 16000
    for i in range(4):
        soundfile.write(tmp_path / f"{i}.wav", 0.3 * np.sin(2 * np.pi * (300 + 200 * i) * t), 16000)
    (tmp_path / "train.csv").write_text("file,label\n" + "".join(f"{i}.wav,{'xy'[i % 2]}\n" for i in range(4)))
    (tmp_path / "classes.txt").write_text("x\ny\n")
    data = [f"data.train={tmp_path / 'train.csv'}", "data.preset=speechcommands"]
    overrides = [*data, "train.batch_size=2", "throughput_rounds=0", override]
    with pytest.raises(UserError, match=message):
        run_training(_config(overrides), tmp_path / "run")


def test_the_embedded_words_take_no_waveform_augmentation(tmp_path):
    with pytest.raises(UserError, match="data.train=null"):
        run_training(_config(["data.roll_mag_aug=true"]), tmp_path / "run")
