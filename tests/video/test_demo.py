"""The video demo on small settings: the image demo's files, table and order, random dropping averaged over seeds."""

import json

import pytest
from PIL import Image

from tokenmerge.video.demo import run_demo
from tokenmerge.video.embedded import WEIGHTS

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not WEIGHTS.is_file(), reason="embedded weights not trained yet")]


def test_demo_averages_random_dropping_over_seeds_and_writes_the_image_demos_files(tmp_path, capsys):
    rows = run_demo(tmp_path, r_values=(16,), seeds=(0, 1), per_class=2, throughput_rounds=1)
    assert [(row["method"], row["r"], row["merge_scope"]) for row in rows[1:]] == [
        ("tome", 16, "spacetime"),
        ("tome", 16, "frame"),
        ("random_drop", 16, "spacetime"),
    ]
    drop = rows[-1]
    assert drop["seeds"] == [0, 1] and "seed" not in drop and rows[1]["seeds"] == [0]  # ToMe is deterministic
    for score in ("top1", "agreement"):
        assert len(drop[f"{score}_by_seed"]) == 2 and drop[score] == pytest.approx(sum(drop[f"{score}_by_seed"]) / 2)
    out = capsys.readouterr().out
    assert "random_drop: mean over seeds 0, 1" in out
    names = ("results.json", "results.csv", "accuracy_vs_throughput.png", "merges.png")
    assert [line for line in out.splitlines() if line.startswith("wrote ")] == [f"wrote {tmp_path / n}" for n in names]
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["results"][-1]["seeds"] == [0, 1] and "training" in payload
    assert Image.open(tmp_path / "merges.png").width == 8 * 128  # 8 frames of 128 pixels


def test_bad_input_is_one_line(tmp_path, capsys, monkeypatch):
    from tokenmerge.video.demo import main

    monkeypatch.delenv("TOKENMERGE_DEBUG", raising=False)
    (tmp_path / "a_file").write_text("")
    missing = tmp_path / "none.safetensors"
    cases = [
        (["--out", str(tmp_path / "a_file")], f"error: --out {tmp_path / 'a_file'} is a file: give a folder"),
        (["--weights", str(missing)], f"error: the embedded weights {missing} are missing: train them"),
    ]
    for args, start in cases:
        with pytest.raises(SystemExit) as info:
            main([*args, "--quick"])
        err = capsys.readouterr().err
        assert info.value.code == 2 and err.startswith(start) and err.count("\n") == 1, err
