"""Fine-tuning with merging: the Hydra job in one process and under torchrun (two processes, gloo), and starting
from an AudioMAE pre-training checkpoint (encoder loaded, decoder skipped, new head)."""

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from tests.commands import run_module
from tests.torchrun import torchrun
from tokenmerge.audio import SpectrogramViT, load_checkpoint
from tokenmerge.audio.checkpoint import load_pretrained_encoder
from tokenmerge.audio.model import EMBEDDED_ARCH
from tokenmerge.audio.spoken_words import WORDS
from tokenmerge.audio.train import build_model, run_training
from tokenmerge.experiments.cli import UserError

from .audiomae_reference import synthetic_audiomae_pretraining_state, synthetic_audiomae_state

TINY = [
    "tome.r=8",
    "train.steps=4",
    "train.batch_size=4",
    "train.eval_every=2",
    "train.log_every=2",
    "train.num_workers=0",
    "data.train_size=32",
    "data.val_size=10",
    "data.utterances_per_word=2",
]


def _config(overrides):
    with initialize_config_module("tokenmerge.audio.conf", version_base=None):
        return OmegaConf.to_container(compose("train", overrides=overrides), resolve=True)


def test_one_process_trains_with_merging_and_reports_both_throughputs(tmp_path):
    torch.set_num_threads(1)
    summary = run_training(_config([*TINY, "throughput_rounds=1"]), tmp_path)
    assert summary["schedule"] == [8] * 6 and summary["metrics"]["step"] == 4
    assert set(summary["training_samples_per_s"]) == {"unmerged", "merged", "batch", "device"}
    saved = json.loads((tmp_path / "train_results.json").read_text())
    assert saved["classes"] == list(WORDS)
    model = SpectrogramViT(**EMBEDDED_ARCH, num_classes=10)
    load_checkpoint(model, tmp_path / "model.safetensors")  # plain weights: the patch adds no parameters


def test_two_processes_under_torchrun(tmp_path):
    command = torchrun("-m", "tokenmerge.audio.train", *TINY, "throughput_rounds=0", f"hydra.run.dir={tmp_path}")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "train_results.json").read_text())
    assert summary["metrics"]["step"] == 4 and torch.isfinite(torch.tensor(summary["metrics"]["loss"]))
    state = torch.load(tmp_path / "train_state.pt", weights_only=True)
    assert state["world_size"] == 2


def test_start_from_an_audiomae_pretraining_checkpoint(tmp_path):
    state = synthetic_audiomae_state(frames=64, bins=32, patch=16, dim=32, depth=2, classes=5)
    for key in ("fc_norm.weight", "fc_norm.bias", "head.weight", "head.bias"):
        del state[key]
    state |= {"norm.weight": torch.ones(32), "norm.bias": torch.zeros(32), "mask_token": torch.zeros(1, 1, 32)}
    state |= {"decoder_embed.weight": torch.zeros(16, 32), "decoder_pos_embed": torch.zeros(1, 9, 16)}
    torch.save({"model": state}, tmp_path / "pretrained.pth")
    model = SpectrogramViT(target_length=64, num_mel_bins=32, embed_dim=32, depth=2, num_heads=4, num_classes=7)
    skipped = load_pretrained_encoder(model, tmp_path / "pretrained.pth")
    assert skipped == ["decoder_embed.weight", "decoder_pos_embed", "mask_token", "norm.bias", "norm.weight"]
    assert torch.equal(model.blocks[1].attn.qkv.weight, state["blocks.1.attn.qkv.weight"])
    assert 1e-5 < model.head.weight.std() < 4e-5 and model.head.bias.abs().max() == 0  # AudioMAE: trunc_normal 2e-5
    del state["blocks.1.mlp.fc1.weight"]
    torch.save({"model": state}, tmp_path / "broken.pth")
    with pytest.raises(ValueError, match="blocks.1.mlp.fc1.weight"):
        load_pretrained_encoder(model, tmp_path / "broken.pth")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("tome.r=-5", "tome.r=-5"),
        ("train.lr=-1", "lr"),
        ("model.name=vit_nope", "model.name"),
        ("data.train=/nope", "data.train"),
    ],
)
def test_bad_settings_stop_before_any_work(tmp_path, override, message):
    with pytest.raises(UserError, match=message):
        run_training(_config([*TINY, override]), tmp_path)
    assert not any(tmp_path.iterdir())


def test_run_eval_user_error_is_one_line(tmp_path):
    done = run_module("tokenmerge.audio.run_eval", "tome.r=-5", f"hydra.run.dir={tmp_path}", timeout=120)
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
    assert done.stderr.startswith("error: tome.r=-5") and "Traceback" not in done.stderr


def test_a_checkpoint_or_index_that_does_not_fit_is_one_user_error(tmp_path):
    video_weights = Path(__file__).parents[2] / "video" / "weights" / "clip_vit.safetensors"
    with pytest.raises(UserError, match=r"model.checkpoint=.*does not fit the model \(10 classes"):
        run_training(_config([*TINY, f"model.checkpoint={video_weights}"]), tmp_path / "checkpoint")
    index = tmp_path / "train.csv"
    index.write_text("no,header\n")
    with pytest.raises(UserError, match="data.train=.*train.csv"):
        run_training(_config([*TINY, f"data.train={index}"]), tmp_path / "index")


def _pretraining_checkpoint(path, depth=6):
    """An AudioMAE pre-training checkpoint (official key names) for the embedded architecture, saved at ``path``."""
    patch = EMBEDDED_ARCH["patch_size"]
    state = synthetic_audiomae_pretraining_state(frames=128, bins=128, patch=patch, dim=128, depth=depth)
    torch.save({"model": state}, path)
    return state


def test_model_pretrained_in_the_job_loads_the_encoder_and_lists_the_skipped_keys(tmp_path, capsys):
    state = _pretraining_checkpoint(tmp_path / "pretrain.pth")
    net = build_model(_config([*TINY, f"model.pretrained={tmp_path / 'pretrain.pth'}"])["model"], 10, 128)
    assert torch.equal(net.blocks[5].attn.qkv.weight, state["blocks.5.attn.qkv.weight"])
    assert 1e-5 < net.head.weight.std() < 4e-5 and net.head.bias.abs().max() == 0
    printed = capsys.readouterr().out
    assert "5 pre-training keys not used: decoder_embed.weight, decoder_pos_embed, mask_token, norm.* (2)" in printed


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("both", r"model.checkpoint and model.pretrained are both set"),
        ("shallow", r"model.pretrained=.*pretrain.pth does not fit the model .*blocks.4"),
        ("unreadable", r"model.pretrained=.*pretrain.pth: Checkpoint .*pretrain.pth"),
    ],
)
def test_a_bad_model_pretrained_is_one_user_error(tmp_path, setting, message):
    path = tmp_path / "pretrain.pth"
    if setting == "unreadable":
        path.write_bytes(b"not a checkpoint")
    else:
        _pretraining_checkpoint(path, depth=4 if setting == "shallow" else 6)  # the embedded model has 6 blocks
    overrides = [*TINY, "throughput_rounds=0", f"model.pretrained={path}"]
    if setting == "both":
        overrides.append(f"model.checkpoint={path}")
    with pytest.raises(UserError, match=message):
        run_training(_config(overrides), tmp_path / "run")
    assert not (tmp_path / "run").exists()
