"""Training on a user's audio files: unreadable files are skipped and reported (as evaluation does), and a merge
schedule the model clamps is noted (as evaluation notes it)."""

import json

import numpy as np
import soundfile
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from tokenmerge.audio.train import run_training


def _config(overrides):
    with initialize_config_module("tokenmerge.audio.conf", version_base=None):
        return OmegaConf.to_container(compose("train", overrides=overrides), resolve=True)


def test_unreadable_wavs_are_skipped_counted_and_a_clamped_r_is_noted(tmp_path, capsys):
    torch.set_num_threads(1)
    rows = ["file,label"]
    t = np.arange(16000) / 16000
    for i in range(8):
        label = ("low", "high")[i % 2]
        soundfile.write(tmp_path / f"{i}.wav", (0.3 * np.sin(2 * np.pi * (300 + 900 * (i % 2)) * t)), 16000)
        rows.append(f"{i}.wav,{label}")
    (tmp_path / "empty.wav").write_bytes(b"")  # the file that crashed default_collate
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    rows += ["empty.wav,low", "corrupt.wav,high"]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "classes.txt").write_text("low\nhigh\n")
    out = tmp_path / "run"
    overrides = [
        f"data.train={tmp_path / 'train.csv'}",
        "tome.r=100",  # more than a block of the 64-patch embedded model can merge: clamped
        "train.steps=3",
        "train.batch_size=4",
        "train.num_workers=0",
        "train.log_every=1",
        "train.eval_every=0",
        "throughput_rounds=0",
    ]
    summary = run_training(_config(overrides), out)
    assert summary["metrics"]["step"] == 3
    saved = json.loads((out / "train_results.json").read_text())
    assert saved["skipped_files"] == 2
    assert sorted(entry["path"].rsplit("/", 1)[1] for entry in saved["skipped"]) == ["corrupt.wav", "empty.wav"]
    assert saved["note"].startswith("r=100 clamped") and saved["schedule"] != [100] * len(saved["schedule"])
    printed = capsys.readouterr().out
    assert "2 unreadable files skipped in training" in printed and "note: r=100 clamped" in printed
