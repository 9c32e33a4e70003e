"""A Hydra multirun evaluates the unmerged reference once per model and dataset and ends with one table."""

import json
import subprocess
import sys

import pytest

from tokenmerge.image.embedded import WEIGHTS


@pytest.mark.skipif(not WEIGHTS.is_file(), reason="embedded weights not trained yet")
def test_multirun_shares_the_reference_and_writes_one_table(tmp_path):
    sweep = tmp_path / "sweep"
    cmd = [
        sys.executable,
        "-m",
        "tokenmerge.image.run_eval",
        "-m",
        "tome.r=4,1000",
        "data.max_samples=21",
        "data.workers=0",
        "throughput.rounds=1",
        "throughput.batch_size=4",
        f"hydra.sweep.dir={sweep}",
    ]
    env = {"TOKENMERGE_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("eval tome r=0 (unmerged)") == 1  # job 1 reads job 0's reference
    assert "eval tome r=0 (unmerged): predictions read from" in result.stdout + result.stderr
    assert "sweep of 2 jobs" in result.stdout and "* r=1000 clamped" in result.stdout
    payload = json.loads((sweep / "results.json").read_text())
    assert [(row["method"], row["r"], row["job"]) for row in payload["results"]] == [
        ("tome", 0, "0"),
        ("tome", 4, "0"),
        ("tome", 1000, "1"),
    ]
    assert payload["results"][2]["schedule"] == [32, 16, 8, 4, 2, 1] and payload["jobs"] == 2
    assert (sweep / "results.csv").is_file()
