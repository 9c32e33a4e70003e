"""Evaluation of every modality under torchrun (2 CPU processes, gloo) equals the single-process run.

The datasets have sizes that 2 processes and the batch size do not divide, so uneven shards and last batches
are exercised; every sample must count exactly once, and only rank 0 may write results.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.torchrun import torchrun

pytestmark = pytest.mark.slow

RUNS = {
    "image": ["data.max_samples=45", "data.batch_size=8", "tome.r=8"],
    # the random baselines draw per sample from the setting's seed, so sharding does not change their numbers
    "image-random_drop": ["data.max_samples=45", "data.batch_size=8", "tome.r=8", "tome.method=random_drop"],
    "video": ["data.per_class=2", "data.max_samples=13", "data.batch_size=4", "tome.r=20"],
    "audio": ["data.per_class=2", "data.max_samples=15", "data.batch_size=4", "tome.r=8"],
}
COMMON = ["data.workers=0", "throughput.batch_size=2", "throughput.rounds=1"]


def _run(command: list[str], env: dict) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]


def _results(folder) -> dict:
    return json.loads((folder / "results.json").read_text())


@pytest.mark.parametrize("run", sorted(RUNS))
def test_two_processes_give_the_single_process_results(run, tmp_path):
    env = {**os.environ, "TOKENMERGE_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    modality = run.split("-")[0]
    args = ["-m", f"tokenmerge.{modality}.run_eval", *RUNS[run], *COMMON]
    _run([sys.executable, *args, f"hydra.run.dir={tmp_path / 'one'}"], env)
    _run(torchrun(*args, f"hydra.run.dir={tmp_path / 'two'}"), env)

    one, two = _results(tmp_path / "one"), _results(tmp_path / "two")
    assert two["rank"] == 0 and one["rank"] == 0
    for a, b in zip(one["results"], two["results"], strict=True):
        assert (a["world_size"], b["world_size"]) == (1, 2)
        assert a["samples"] == b["samples"] and a["samples"] % 2 == 1
        assert a["top1"] == b["top1"] and a["agreement"] == b["agreement"]
        assert b["kl"] == pytest.approx(a["kl"], abs=1e-5)
        assert (a["method"], a["r"], a["tokens_per_layer"]) == (b["method"], b["r"], b["tokens_per_layer"])
    assert one["results"][1]["final_tokens"] < one["results"][0]["final_tokens"]  # the merged setting merged
