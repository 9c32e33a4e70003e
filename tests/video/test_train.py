"""Fine-tuning the video ViT with merging: the Hydra job on moving-objects clips and on video files, in one process
and under torchrun (two processes, gloo), starting from an MAE-ST pre-training checkpoint (model.pretrained); bad
settings stop before any work with one line."""

import json
import math
import os
import subprocess

import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from tests.commands import run_module
from tests.torchrun import torchrun
from tokenmerge.experiments.cli import UserError
from tokenmerge.video import load_checkpoint
from tokenmerge.video.data import SHORT_VIDEO
from tokenmerge.video.embedded import WEIGHTS, create_embedded_model
from tokenmerge.video.model import EMBEDDED_ARCH
from tokenmerge.video.moving_objects import CLASSES, write_video_dataset
from tokenmerge.video.train import build_model, run_training

from .mae_st_reference import synthetic_mae_st_pretraining_state
from .short_videos import write_short_video

TINY = [
    "tome.r=16",
    "train.steps=4",
    "train.batch_size=4",
    "train.eval_every=2",
    "train.log_every=2",
    "train.num_workers=0",
    "data.train_size=32",
    "data.val_per_class=1",
]


def _config(overrides):
    with initialize_config_module("tokenmerge.video.conf", version_base=None):
        return OmegaConf.to_container(compose("train", overrides=overrides), resolve=True)


def _finite(metrics: dict) -> bool:
    return all(math.isfinite(metrics[key]) for key in ("loss", "val_loss", "val_top1"))


def test_one_process_trains_with_merging_and_reports_both_throughputs(tmp_path):
    torch.set_num_threads(1)
    summary = run_training(_config([*TINY, "throughput_rounds=1"]), tmp_path)
    assert summary["schedule"] == [16] * 4 and summary["metrics"]["step"] == 4 and summary["world_size"] == 1
    assert {"unmerged", "merged", "batch"} <= set(summary["training_samples_per_s"])
    assert _finite(summary["metrics"])
    saved = json.loads((tmp_path / "train_results.json").read_text())
    assert saved["classes"] == list(CLASSES) and saved["metrics"] == summary["metrics"]
    load_checkpoint(create_embedded_model(len(CLASSES)), tmp_path / "model.safetensors")  # the patch adds no weights


def test_video_files_from_a_checkpoint_in_the_frame_scope_skipping_an_unreadable_video(tmp_path):
    torch.set_num_threads(1)
    root = write_video_dataset(tmp_path / "clips", "val", per_class=1)
    (root / "clips" / "broken.mp4").write_bytes(b"not a video")
    with (root / "val.csv").open("a") as index:
        index.write("clips/broken.mp4,0\n")
    overrides = [
        "tome.r=8",
        "tome.merge_scope=frame",
        f"model.checkpoint={WEIGHTS}",
        f"data.train={root / 'val.csv'}",
        f"data.val={root / 'val.csv'}",
        "train.steps=2",
        "train.batch_size=4",
        "train.num_workers=0",
        "throughput_rounds=0",
    ]
    out = tmp_path / "run"
    summary = run_training(_config(overrides), out)
    assert summary["schedule"] == [8] * 4 and summary["tome"]["merge_scope"] == "frame"
    assert summary["classes"] == list(CLASSES) and _finite(summary["metrics"])
    assert (out / "model.safetensors").is_file() and (out / "train_results.json").is_file()


def test_training_counts_and_reports_a_video_shorter_than_one_clip(tmp_path, capsys):
    torch.set_num_threads(1)
    root = write_video_dataset(tmp_path / "clips", "val", per_class=1)
    short = write_short_video(root / "clips" / "short.mp4", 5)  # a clip is 8 frames
    clips = (root / "val.csv").read_text().splitlines()[:3]  # 8 frames each: exactly one clip, not noted
    (root / "train.csv").write_text("\n".join([*clips, "clips/short.mp4,0"]) + "\n")  # one batch holds every video
    overrides = [f"model.checkpoint={WEIGHTS}", f"data.train={root / 'train.csv'}", "train.steps=1"]
    overrides += ["train.batch_size=4", "train.num_workers=0", "throughput_rounds=0"]
    out = tmp_path / "run"
    summary = run_training(_config(overrides), out)
    noted = [{"path": str(short), "note": SHORT_VIDEO, "detail": "5 frames; a clip spans 8"}]
    assert summary["noted_files"] == {SHORT_VIDEO: 1} and summary["noted"] == noted
    saved = json.loads((out / "train_results.json").read_text())
    assert saved["noted_files"] == {SHORT_VIDEO: 1} and saved["noted"] == noted and saved["skipped_files"] == 0
    printed = capsys.readouterr().out
    line = "1 sample in training shorter than one clip, last frame repeated (listed in train_results.json)"
    assert printed.count(line) == 1


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("tome.r=-3", "tome.r=-3"),
        ("tome.r=[8,8]", "one r per layer"),
        ("tome.merge_scope=time", "tome.merge_scope"),
        ("train.lr=-1", "lr"),
        ("model.name=vit_nope", "model.name"),
        ("model=vit_base_patch16", "embedded moving-objects clips are 8 frames of 32 px"),
        ("data.train=/nope", "data.train"),
        ("model.checkpoint=/nope.pth", "model.checkpoint"),
        ("data.train_size=2", "data.train_size=2 is less than one global batch"),
    ],
)
def test_bad_settings_stop_before_any_work(tmp_path, override, message):
    with pytest.raises(UserError, match=message):
        run_training(_config([*TINY, override]), tmp_path)
    assert not any(tmp_path.iterdir())


def test_a_bad_setting_is_one_line_without_a_traceback(tmp_path):
    done = run_module("tokenmerge.video.train", "tome.r=-3", f"hydra.run.dir={tmp_path}", timeout=120)
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0, done.stderr[-2000:]
    assert done.stderr.startswith("error: tome.r=-3") and "Traceback" not in done.stderr
    assert not (tmp_path / "train_results.json").exists()


def test_two_processes_under_torchrun(tmp_path):
    command = torchrun("-m", "tokenmerge.video.train", *TINY, "throughput_rounds=0", f"hydra.run.dir={tmp_path}")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("wrote ") == 1  # rank 0 alone writes and reports
    summary = json.loads((tmp_path / "train_results.json").read_text())
    assert summary["world_size"] == 2 and summary["metrics"]["step"] == 4 and _finite(summary["metrics"])
    state = torch.load(tmp_path / "train_state.pt", weights_only=True)
    assert state["world_size"] == 2 and state["step"] == 4


def _pretraining_checkpoint(path, depth=EMBEDDED_ARCH["depth"]):
    """An MAE-ST pre-training checkpoint (official key names) for the embedded architecture, saved at ``path``."""
    arch = EMBEDDED_ARCH
    sizes = dict(frames=arch["num_frames"], t_patch=arch["t_patch_size"], img=arch["img_size"])
    state = synthetic_mae_st_pretraining_state(**sizes, patch=arch["patch_size"], dim=arch["embed_dim"], depth=depth)
    torch.save({"model": state}, path)
    return state


def test_model_pretrained_loads_the_mae_st_encoder_and_draws_a_new_head(tmp_path, capsys):
    state = _pretraining_checkpoint(tmp_path / "pretrain.pth")
    cfg = _config([*TINY, f"model.pretrained={tmp_path / 'pretrain.pth'}"])
    net = build_model(cfg["model"], len(CLASSES))
    fused = torch.cat([state[f"blocks.3.attn.{n}.weight"] for n in "qkv"])
    assert torch.equal(net.blocks[3].attn.qkv.weight, fused) and torch.equal(net.norm.weight, state["norm.weight"])
    assert torch.equal(net.pos_embed_temporal, state["pos_embed_temporal"])
    assert 1e-5 < net.head.weight.std() < 4e-5 and net.head.bias.abs().max() == 0  # MAE-ST: trunc_normal(std=2e-5)
    printed = capsys.readouterr().out
    assert "4 pre-training keys not used: decoder_embed.weight, decoder_norm.weight" in printed


def test_model_pretrained_trains_in_the_job(tmp_path):
    _pretraining_checkpoint(tmp_path / "pretrain.pth")
    overrides = [*TINY, "train.steps=1", "throughput_rounds=0", f"model.pretrained={tmp_path / 'pretrain.pth'}"]
    summary = run_training(_config(overrides), tmp_path / "run")
    assert summary["metrics"]["step"] == 1 and _finite(summary["metrics"])


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("both", r"model.checkpoint and model.pretrained are both set"),
        ("missing", r"model.pretrained=/nope.pth does not exist"),
        ("shallow", r"model.pretrained=.*pretrain.pth does not fit the model .*blocks.2"),
        ("unreadable", r"model.pretrained=.*pretrain.pth: Checkpoint .*pretrain.pth"),
    ],
)
def test_a_bad_model_pretrained_is_one_user_error(tmp_path, setting, message):
    path = tmp_path / "pretrain.pth"
    if setting == "shallow":
        _pretraining_checkpoint(path, depth=2)  # the embedded model has 4 blocks
    elif setting == "unreadable":
        path.write_bytes(b"not a checkpoint")
    overrides = [*TINY, "throughput_rounds=0", f"model.pretrained={'/nope.pth' if setting == 'missing' else path}"]
    if setting == "both":
        overrides.append(f"model.checkpoint={WEIGHTS}")
    with pytest.raises(UserError, match=message):
        run_training(_config(overrides), tmp_path / "run")
    assert not (tmp_path / "run").exists()
