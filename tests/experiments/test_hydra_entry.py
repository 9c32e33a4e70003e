"""The Hydra entry points as a user meets them: ``-m`` anywhere on the line, no run folder left by a failed check."""

import os
import subprocess
import sys

from tests.commands import DEBUG_SWITCHES
from tokenmerge.experiments.hydra_cli import discard_run_folder, flags_first


def _tokenmerge(cwd, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in DEBUG_SWITCHES}
    command = [sys.executable, "-m", "tokenmerge.app.main", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=cwd)


def test_multirun_flag_is_moved_before_the_overrides():
    assert flags_first(["tome.r=8", "-m", "tome.method=tome,random_drop"]) == [
        "-m",
        "tome.r=8",
        "tome.method=tome,random_drop",
    ]
    assert flags_first(["--multirun", "a=1"]) == ["--multirun", "a=1"] and flags_first(["a=-m"]) == ["a=-m"]


def test_only_a_folder_of_hydra_files_is_discarded(tmp_path):
    run = tmp_path / "outputs" / "video_eval" / "2026-01-01"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text("a: 1\n")
    (run / "run_eval.log").write_text("")
    kept = tmp_path / "outputs" / "video_eval" / "earlier"
    kept.mkdir()
    (kept / "results.json").write_text("{}")
    assert discard_run_folder(kept, stop=tmp_path) is False and kept.is_dir()
    assert discard_run_folder(run, stop=tmp_path) is True and not run.exists()
    assert (tmp_path / "outputs" / "video_eval").is_dir()  # not empty: the earlier run is still there
    (kept / "results.json").unlink()
    assert discard_run_folder(kept, stop=tmp_path) is True and sorted(tmp_path.iterdir()) == []
    assert discard_run_folder(tmp_path, stop=tmp_path) is False and tmp_path.is_dir()


def test_eval_takes_m_after_the_overrides_and_a_failed_check_leaves_no_folder(tmp_path):
    # -m after an override: the sweep is recognised (every job checked first, "job #0" named)
    done = _tokenmerge(tmp_path, "eval", "video", "tome.method=tome", "-m", "tome.r=-5,4")
    assert done.returncode == 2 and done.stderr.startswith("error: job #0 (") and "Nothing was run" in done.stderr
    assert done.stderr.strip().count("\n") == 0, done.stderr[-2000:]
    # a single run that fails its check: Hydra had made outputs/video_eval/<time>/.hydra; nothing is left
    done = _tokenmerge(tmp_path, "eval", "video", "tome.r=-5")
    assert done.returncode == 2 and done.stderr.startswith("error: tome.r=-5"), done.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == []
