"""The paper's audio result, reproduced end to end at toy scale with the commands a user runs (README "Reproduce"):
an AudioMAE pre-training checkpoint (official key names) -> ``tokenmerge train audio
experiment=paper_audioset_vit_base_finetune model.pretrained=... tome.r=...`` (merging on during fine-tuning, as the
paper trains its audio model) under torchrun (2 gloo processes) -> ``tokenmerge eval audio
experiment=paper_audioset_vit_base`` with a sweep of r. Only the model size, the schedule, the feature preset and the
data (spoken words written to a temporary folder) are shrunk."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from tests.torchrun import torchrun
from tokenmerge.audio.spoken_words import WORDS, write_audio_dataset

from .audiomae_reference import synthetic_audiomae_pretraining_state

pytestmark = pytest.mark.slow

SIZE = ["model.embed_dim=32", "model.depth=2", "model.num_heads=2"]  # vit_base_patch16 shrunk to 2 blocks of width 32
# 1 s clips: 128 frames x 128 mel bins, 64 patches + class token (the recipe's audioset preset is 1024 frames)
FEATURES = ["data.preset=spoken_words"]
SCHEDULE = ["train.steps=4", "train.warmup_steps=1", "train.batch_size=2", "train.num_workers=0", "train.amp=false"]
SCHEDULE += ["train.eval_every=4", "train.checkpoint_every=4", "train.log_every=2", "train.epoch_samples=null"]
EVAL = ["device=cpu", "dtype=float32", "data.batch_size=4", "data.workers=0", "throughput.batch_size=2"]
EVAL += ["throughput.rounds=1", "data.classes=null"]  # classes.txt beside the index


def _run(command: list[str], cwd) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENMERGE_CACHE": str(cwd / "cache")}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=cwd)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


def test_fine_tune_with_merging_from_audiomae_pretraining_then_evaluate_a_sweep_of_r(tmp_path):
    state = synthetic_audiomae_pretraining_state(frames=128, bins=128, patch=16, dim=32, depth=2)
    torch.save({"model": state}, tmp_path / "pretrained.pth")
    data = write_audio_dataset(tmp_path / "audioset", "train", per_class=2, seed=0)
    write_audio_dataset(data, "val", per_class=1, seed=1)

    train = ["experiment=paper_audioset_vit_base_finetune", "model.pretrained=pretrained.pth", "tome.r=2"]
    train += [f"data.train={data / 'train.csv'}", f"data.val={data / 'val.csv'}", *SIZE, *FEATURES, *SCHEDULE]
    train += ["data.mixup=0"]  # AudioMAE's mixup makes soft multi-label targets; the spoken words are single-label
    command = torchrun("-m", "tokenmerge.app.main", "train", "audio", *train, "throughput_rounds=0")
    printed = _run([*command, "hydra.run.dir=finetune"], tmp_path)
    assert "5 pre-training keys not used: decoder_embed.weight, decoder_pos_embed, mask_token, norm.* (2)" in printed
    assert "effective batch 4 = train.batch_size 2 x 2 processes x train.repeat_aug 1" in printed
    summary = json.loads((tmp_path / "finetune" / "train_results.json").read_text())
    assert summary["world_size"] == 2 and summary["metrics"]["step"] == 4 and summary["classes"] == list(WORDS)
    assert summary["schedule"] == [2, 2] and summary["tome"]["r"] == 2  # it trained with merging on
    weights = load_file(tmp_path / "finetune" / "model.safetensors")
    moved = (weights["blocks.1.attn.qkv.weight"] - state["blocks.1.attn.qkv.weight"]).abs().max()
    assert moved < 1e-2  # 4 small steps from the encoder
    assert weights["head.weight"].shape == (len(WORDS), 32) and weights["head.weight"].std() < 1e-3  # drawn anew

    evaluate = ["experiment=paper_audioset_vit_base", "model.checkpoint=finetune/model.safetensors"]
    evaluate += [f"model.num_classes={len(WORDS)}", "model.target_length=128", *SIZE, *FEATURES]
    evaluate += [f"data.root={data / 'val.csv'}", *EVAL]
    command = [sys.executable, "-m", "tokenmerge.app.main", "eval", "audio", *evaluate, "hydra.sweep.dir=sweep"]
    _run([*command, "-m", "tome.r=0,2"], tmp_path)
    rows = json.loads((tmp_path / "sweep" / "results.json").read_text())["results"]
    assert {row["r"] for row in rows} == {0, 2} and all(row["samples"] == len(WORDS) for row in rows)
    merged = next(row for row in rows if row["r"] == 2)
    assert merged["final_tokens"] == 61 and 0 <= merged["top1"] <= 1  # 65 tokens, 2 merged in each of 2 blocks
    for job in ("0", "1"):
        payload = json.loads((tmp_path / "sweep" / job / "results.json").read_text())
        assert payload["samples"]["evaluated"] == payload["samples"]["listed"] == len(WORDS)
