"""The embedded model's training script runs end to end (a few steps) and saves a loadable checkpoint."""

import torch

from tokenmerge.experiments.embedded_training import EmbeddedRecipe
from tokenmerge.image.embedded import load_embedded_model, read_metadata
from tokenmerge.image.train_embedded import train


def test_a_few_training_steps_save_a_loadable_model(tmp_path):
    torch.set_num_threads(1)
    path = tmp_path / "m.safetensors"
    model, run = train(EmbeddedRecipe(steps=2, batch_size=8, warmup=1, eval_every=1, workers=0, tome_r=4), out=path)
    saved = load_embedded_model(path)
    loaded, classes = saved.model, saved.classes
    assert len(classes) == 21 and 0 <= run.accuracy <= 1
    assert [step for step, _ in run.curve] == [1, 2] and saved.info["curve"][-1][1] == round(run.accuracy, 4)
    assert saved.info["tome_r"] == 4 and read_metadata(path)["info"] == saved.info
    images = torch.randn(2, 3, 32, 32)
    assert loaded(images).shape == (2, 21)


def test_a_trial_run_never_overwrites_the_shipped_weights(tmp_path, monkeypatch, capsys):
    import hashlib

    import pytest

    from tokenmerge.image.embedded import WEIGHTS
    from tokenmerge.image.train_embedded import main

    torch.set_num_threads(1)
    before = hashlib.sha256(WEIGHTS.read_bytes()).hexdigest() if WEIGHTS.is_file() else None
    monkeypatch.chdir(tmp_path)
    main(["--steps", "2", "--batch-size", "4", "--workers", "0"])
    assert (tmp_path / "results" / "train_embedded" / "photo_vit.safetensors").is_file()
    after = hashlib.sha256(WEIGHTS.read_bytes()).hexdigest() if WEIGHTS.is_file() else None
    assert after == before
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "(default: results/train_embedded/photo_vit.safetensors)" in " ".join(capsys.readouterr().out.split())
    with pytest.raises(SystemExit) as info:
        main(["--steps", "0"])
    assert info.value.code == 2 and "error: --steps=0 is not valid" in capsys.readouterr().err


def test_two_processes_under_torchrun_write_one_model(tmp_path):
    import os
    import subprocess

    from tests.torchrun import torchrun

    out = tmp_path / "ddp.safetensors"
    command = torchrun("-m", "tokenmerge.image.train_embedded", "--steps", "3", "--batch-size", "4", "--workers", "0")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*command, "--out", str(out)], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("saved to") == 1  # rank 0 alone reports and writes
    saved = load_embedded_model(out)
    model, classes = saved.model, saved.classes
    assert len(classes) == 21 and model(torch.randn(1, 3, 32, 32)).shape == (1, 21)
