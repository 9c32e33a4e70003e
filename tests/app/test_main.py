"""The ``tokenmerge`` console script: help on every level, commands routed, user errors as one line."""

import os
import subprocess
import sys

import pytest

from tokenmerge.app.main import main


def _tokenmerge(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "TOKENMERGE_DEBUG")}
    command = [sys.executable, "-m", "tokenmerge.app.main", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.parametrize("args", [[], ["demo"], ["eval"], ["visualize"], ["bench"]])
def test_help_on_every_level(args, capsys):
    with pytest.raises(SystemExit) as info:
        main([*args, "--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0 and out.startswith("usage: tokenmerge")


def test_eval_help_shows_the_hydra_config_groups():
    done = _tokenmerge("eval", "audio", "--help")
    assert done.returncode == 0 and "model: " in done.stdout and "embedded_tome" in done.stdout


def test_eval_runs_the_modality_and_bad_input_is_one_line(tmp_path):
    done = _tokenmerge("eval", "image", "tome.r=-5", f"hydra.run.dir={tmp_path}")
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0, done.stderr
    assert done.stderr.startswith("error: ") and "tome.r" in done.stderr and "Traceback" not in done.stderr
    done = _tokenmerge("demo", "--only", "speech", "--out", str(tmp_path))
    assert done.returncode == 2 and done.stderr.strip() == (
        "error: --only: unknown modality speech; choose from image, video, audio."
    )


def test_unknown_command_or_modality_is_refused(capsys):
    for args in (["train"], ["eval", "speech"], ["bench", "nothing"]):
        with pytest.raises(SystemExit) as info:
            main(args)
        assert info.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_bench_runs_a_benchmark_script(tmp_path):
    done = _tokenmerge("bench", "merge-overhead", "--help")
    assert done.returncode == 0 and "usage" in done.stdout
