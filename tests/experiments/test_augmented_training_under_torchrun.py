"""CutMix, repeated augmentation and the weighted sampler together under torchrun (2 gloo processes): every rank
reads its own weighted share, twice per sample, the model sees CutMix boxes, and resuming from the mid-run
checkpoint ends with the weights of the uninterrupted run."""

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

from tests.torchrun import torchrun

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_processes_train_with_cutmix_repeats_and_weights_and_resume_exactly(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = torchrun("-m", "tests.experiments.augmented_training_helpers", str(tmp_path))
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for record in ranks:
        seen = record["seen"]
        assert len(seen) == 6 * 4 * 2 and all(i < 16 for i in seen)  # 6 steps x 4 draws x 2 copies, weighted
        assert seen[0::2] == seen[1::2]  # every drawn sample read twice in a row
        assert all(shape == [8, 3, 32, 32] for shape, _ in record["inputs"])
        assert all(values <= 2 for _, values in record["inputs"]) and any(v == 2 for _, v in record["inputs"])
        assert record["interrupted_at"] == 2
        assert record["resumed_seen"] == seen[2 * 8 :]  # the resumed run reads what the whole run read after step 2
    assert ranks[0]["seen"] != ranks[1]["seen"]  # each rank its own positions of the draw
    for name in ("whole", "resumed"):
        weights = [torch.load(tmp_path / f"{name}_rank{r}.pt", weights_only=True) for r in (0, 1)]
        torch.testing.assert_close(weights[0], weights[1], rtol=0, atol=0)  # one model on both ranks
    whole, resumed = (torch.load(tmp_path / f"{name}_rank0.pt", weights_only=True) for name in ("whole", "resumed"))
    torch.testing.assert_close(resumed, whole, rtol=0, atol=0)
