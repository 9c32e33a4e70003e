"""The audio demo on small settings: the image demo's files, table and order, random dropping averaged over seeds."""

import json

import pytest

from tokenmerge.audio import demo
from tokenmerge.audio.demo import MODELS, WEIGHTS_FILES, run_demo
from tokenmerge.audio.spoken_words import SpokenWordsDataset

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not all(w.is_file() for w in WEIGHTS_FILES), reason="embedded weights not trained yet"),
]


def test_demo_averages_random_dropping_over_seeds_and_writes_the_image_demos_files(tmp_path, capsys, monkeypatch):
    def few_voices(clips, seed=100):  # the demo's clips, from a bank of 2 utterances per word instead of 50
        return SpokenWordsDataset(clips, seed=seed, split="val", train=False, utterances_per_word=2)

    monkeypatch.setattr(demo, "evaluation_clips", few_voices)
    rows = run_demo(tmp_path, r_values=(4,), seeds=(0, 1), clips=10, throughput_rounds=1)
    settings = [("tome", 0), ("tome", 4), ("random_drop", 4)]
    assert [(row["model"], row["method"], row["r"]) for row in rows] == [(m, *s) for m in MODELS for s in settings]
    for drop in rows[2::3]:  # each model's own seeds: the two models' rows are not averaged together
        assert drop["seeds"] == [0, 1] and "seed" not in drop
        for score in ("top1", "agreement"):
            values = drop[f"{score}_by_seed"]
            assert len(values) == 2 and drop[score] == pytest.approx(sum(values) / 2)
    out = capsys.readouterr().out
    assert sum(line.startswith("model") and "method" in line for line in out.splitlines()) == 1  # one table
    assert "random_drop: mean over seeds 0, 1" in out
    plots = [f"accuracy_vs_throughput_{name.replace(' ', '_')}.png" for name in MODELS]
    names = ("results.json", "results.csv", *plots, "merges.png")
    assert [line for line in out.splitlines() if line.startswith("wrote ")] == [f"wrote {tmp_path / n}" for n in names]
    payload = json.loads((tmp_path / "results.json").read_text())
    assert set(payload["training"]) == set(MODELS) and len(payload["results"]) == 6


def test_bad_input_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TOKENMERGE_DEBUG", raising=False)
    (tmp_path / "a_file").write_text("")
    missing = tmp_path / "none.safetensors"
    cases = [
        (["--out", str(tmp_path / "a_file")], f"error: --out {tmp_path / 'a_file'} is a file: give a folder"),
        (["--out", str(tmp_path / "out")], f"error: the embedded weights {missing} are missing: train them"),
    ]
    monkeypatch.setattr(demo, "WEIGHTS_FILES", (WEIGHTS_FILES[0], missing))
    for args, start in cases:
        with pytest.raises(SystemExit) as info:
            demo.main([*args, "--quick"])
        err = capsys.readouterr().err
        assert info.value.code == 2 and err.startswith(start) and err.count("\n") == 1, err
