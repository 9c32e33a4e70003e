"""Checkpoints as the official scripts write them load; anything else pickled is refused with a clear message, and
an evaluation with a checkpoint that does not fit is one line."""

import argparse
import pathlib

import pytest
import torch

from tests.commands import run_module
from tokenmerge.experiments.checkpoint import UnreadableCheckpoint, read_state_dict, save_safetensors
from tokenmerge.video import create_model
from tokenmerge.video.moving_objects import CLASSES


def test_an_official_checkpoint_with_its_args_namespace_loads(tmp_path):
    weights = {"blocks.0.attn.q.weight": torch.randn(4, 4)}
    args = argparse.Namespace(model="vit_large_patch16", blr=1.6e-3, num_frames=16, output_dir="./out", dist_eval=True)
    torch.save(
        {"model": weights, "optimizer": {"state": {}}, "epoch": 49, "scaler": {}, "args": args}, tmp_path / "c.pth"
    )
    assert torch.equal(read_state_dict(tmp_path / "c.pth")["blocks.0.attn.q.weight"], weights["blocks.0.attn.q.weight"])


def test_other_pickled_objects_are_refused_with_what_was_found(tmp_path):
    torch.save({"model": {"w": torch.ones(1)}, "root": pathlib.PurePosixPath("/data")}, tmp_path / "c.pth")
    with pytest.raises(UnreadableCheckpoint, match=r"holds a pickled pathlib\.PurePosixPath besides its tensors"):
        read_state_dict(tmp_path / "c.pth")


def test_evaluation_with_a_checkpoint_that_does_not_fit_is_one_line(tmp_path):
    wrong_head = create_model("embedded", num_classes=7)  # the file says 10 classes, its head has 7
    arch = {**wrong_head.arch, "num_classes": len(CLASSES)}
    save_safetensors(wrong_head, tmp_path / "k.safetensors", arch=arch, classes=list(CLASSES))
    done = run_module(
        "tokenmerge.video.run_eval",
        f"model.checkpoint={tmp_path / 'k.safetensors'}",
        "data.per_class=1",
        f"hydra.run.dir={tmp_path / 'out'}",
    )
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0, done.stderr[-2000:]
    assert done.stderr.startswith(f"error: model.checkpoint={tmp_path / 'k.safetensors'} does not fit the model")
    assert "head.weight: checkpoint (7, 128) vs model (10, 128)" in done.stderr
