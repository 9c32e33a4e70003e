"""The paper's video result, reproduced end to end at toy scale with the commands a user runs (README "Reproduce"):
an MAE-ST pre-training checkpoint (official key names) -> ``tokenmerge train video
experiment=paper_k400_vit_large_finetune model.pretrained=...`` under torchrun (2 gloo processes) -> ``tokenmerge
eval video experiment=paper_k400_vit_large`` with multi-view testing and a sweep of r. Only the model size, the
schedule, the clip size and the data (moving-objects videos written to a temporary folder) are shrunk."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from tests.torchrun import torchrun
from tokenmerge.video.moving_objects import CLASSES, write_video_dataset

from .mae_st_reference import synthetic_mae_st_pretraining_state

pytestmark = pytest.mark.slow

# vit_large_patch16 shrunk: 2 blocks of width 32; clips of 4 frames x 32 px (2 x 2 x 2 tubelets + class token: 9 tokens)
SIZE = ["model.embed_dim=32", "model.depth=2", "model.num_heads=2", "model.num_frames=4", "model.img_size=32"]
FRAMES = ["data.sampling.sampling_rate=1", "data.sampling.target_fps=null"]  # the toy videos have 8 frames at 8 fps
SCHEDULE = ["train.steps=4", "train.warmup_steps=1", "train.batch_size=2", "train.num_workers=0"]
SCHEDULE += ["train.eval_every=4", "train.checkpoint_every=4", "train.log_every=2", "throughput_rounds=0"]
# 2 temporal clips x 3 spatial crops per video (the paper's K400 testing: 10 x 3)
VIEWS = ["data.sampling.num_frames=4", "data.sampling.crop_size=32", "data.sampling.short_side=40"]
VIEWS += ["data.sampling.num_temporal_views=2", "data.sampling.num_spatial_crops=3"]
EVAL = ["device=cpu", "dtype=float32", "data.batch_size=4", "data.workers=0", "throughput.batch_size=2"]
EVAL += ["throughput.rounds=1"]


def _run(command: list[str], cwd) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENMERGE_CACHE": str(cwd / "cache")}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=cwd)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


def test_fine_tune_from_mae_st_pretraining_then_evaluate_a_sweep_of_r(tmp_path):
    state = synthetic_mae_st_pretraining_state(frames=4, t_patch=2, img=32, patch=16, dim=32, depth=2)
    torch.save({"model": state}, tmp_path / "k400_400ep_rep4_mr9_16x4.pyth")
    data = write_video_dataset(tmp_path / "k400", "train", per_class=2, seed=0)
    write_video_dataset(data, "val", per_class=1, seed=1)

    train = ["experiment=paper_k400_vit_large_finetune", "model.pretrained=k400_400ep_rep4_mr9_16x4.pyth"]
    train += [f"data.train={data / 'train.csv'}", f"data.val={data / 'val.csv'}", *SIZE, *FRAMES, *SCHEDULE]
    printed = _run(torchrun("-m", "tokenmerge.app.main", "train", "video", *train, "hydra.run.dir=finetune"), tmp_path)
    assert "4 pre-training keys not used: decoder_embed.weight" in printed
    assert "effective batch 8 = train.batch_size 2 x 2 processes x train.repeat_aug 2" in printed  # the recipe's 2
    summary = json.loads((tmp_path / "finetune" / "train_results.json").read_text())
    assert summary["world_size"] == 2 and summary["metrics"]["step"] == 4 and summary["classes"] == list(CLASSES)
    weights = load_file(tmp_path / "finetune" / "model.safetensors")
    pretrained = torch.cat([state[f"blocks.1.attn.{n}.weight"] for n in "qkv"])
    assert (weights["blocks.1.attn.qkv.weight"] - pretrained).abs().max() < 1e-2  # 4 small steps from the encoder
    assert weights["head.weight"].shape == (len(CLASSES), 32) and weights["head.weight"].std() < 1e-3  # drawn anew

    evaluate = ["experiment=paper_k400_vit_large", "model.checkpoint=finetune/model.safetensors"]
    evaluate += [f"model.num_classes={len(CLASSES)}", *SIZE, f"data.root={data / 'val.csv'}", *FRAMES, *VIEWS, *EVAL]
    command = [sys.executable, "-m", "tokenmerge.app.main", "eval", "video", *evaluate, "hydra.sweep.dir=sweep"]
    _run([*command, "-m", "tome.r=0,2"], tmp_path)
    rows = json.loads((tmp_path / "sweep" / "results.json").read_text())["results"]
    assert {row["r"] for row in rows} == {0, 2} and all(row["samples"] == len(CLASSES) for row in rows)
    merged = next(row for row in rows if row["r"] == 2)
    assert merged["final_tokens"] == 5 and merged["merge_scope"] == "spacetime" and 0 <= merged["top1"] <= 1
    for job in ("0", "1"):
        payload = json.loads((tmp_path / "sweep" / job / "results.json").read_text())
        assert payload["samples"]["evaluated"] == payload["samples"]["listed"] == len(CLASSES)
        assert payload["config"]["data"]["sampling"]["num_temporal_views"] == 2
