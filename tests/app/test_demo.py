"""The main demo: one report over the modalities, reuse of finished results, resume of an interrupted sweep."""

import json

import pytest

import tokenmerge.experiments.evaluation as evaluation
from tokenmerge.app import demo
from tokenmerge.app.report import markdown_table
from tokenmerge.image import demo as image_demo

pytestmark = pytest.mark.slow
TINY = dict(r_values=(4, 8), seeds=(0, 1), max_samples=42, throughput_rounds=1)


@pytest.fixture
def count_predictions(monkeypatch):
    """Count the evaluation passes (one per setting that is not read from a saved file)."""
    calls = []
    original = evaluation.predict

    def counting(*args, **kwargs):
        calls.append(kwargs.get("desc"))
        return original(*args, **kwargs)

    monkeypatch.setattr(evaluation, "predict", counting)
    monkeypatch.setattr(image_demo, "QUICK", TINY)
    return calls


def test_report_reuse_resume_and_fresh(tmp_path, count_predictions, capsys):
    report = demo.run_all(tmp_path, quick=True, only=("image",))
    text = report.read_text()
    assert "## Image" in text and "| tome | 8 | 17 |" in text and "random_drop" in text
    for link in ("image/accuracy_vs_throughput.png", "image/merges.png"):
        assert f"]({link})" in text and (tmp_path / link).is_file()
    assert len(count_predictions) == 1 + 2 + 2 * 2 * 2  # the reference, ToMe's r and the baselines' (r, seed)
    assert "random_merge, random_drop: mean over seeds 0, 1 (each seed" in text
    results = json.loads((tmp_path / "image" / "results.json").read_text())
    assert results["environment"]["torch"] and results["environment"]["threads"] >= 1
    assert f"report: {report}" in capsys.readouterr().out

    count_predictions.clear()
    demo.run_all(tmp_path, quick=True, only=("image",))
    assert count_predictions == [] and "reusing the results" in capsys.readouterr().out

    # An interrupted sweep: no done record, one setting's predictions missing. Only that setting runs again.
    (tmp_path / "image" / demo.DONE_FILE).unlink()
    (tmp_path / "image" / "points" / "random_drop_r8.pt").unlink()
    demo.run_all(tmp_path, quick=True, only=("image",))
    assert count_predictions == ["eval random_drop r=8"]

    count_predictions.clear()
    demo.run_all(tmp_path, quick=True, only=("image",), fresh=True)
    assert len(count_predictions) == 11


def test_changed_settings_are_not_resumed(tmp_path, count_predictions, monkeypatch):
    demo.run_all(tmp_path, quick=True, only=("image",))
    (tmp_path / "image" / demo.DONE_FILE).unlink()
    count_predictions.clear()
    monkeypatch.setattr(image_demo, "QUICK", {**TINY, "r_values": (4,)})
    demo.run_all(tmp_path, quick=True, only=("image",))
    assert len(count_predictions) == 1 + 1 + 2 * 2  # the saved predictions belonged to other settings: all run again


def test_unknown_modality_is_a_user_error(tmp_path):
    from tokenmerge.experiments.cli import SettingError

    with pytest.raises(SettingError, match="unknown modality speech; choose from image, video, audio"):
        demo.run_all(tmp_path, only=("speech",))


def test_markdown_table_columns():
    row = dict(method="tome", merge_scope="frame", r=40, final_tokens=9, agreement=0.5, samples_per_s=10.0, speedup=1.5)
    rows = [
        {**row, "model": "a", "mAP": 0.25, "ideal_speedup": 1.4, "note": "r=40 clamped"},
        {**row, "model": "b", "mAP": 0.5, "ideal_speedup": 1.6},
    ]
    lines = markdown_table(rows).splitlines()
    assert lines[0] == (
        "| model | method | scope | r | tokens left | mAP % | agreement % | samples/s | speedup | FLOPs-ideal |"
    )
    assert lines[2] == "| a | tome | frame | 40 * | 9 | 25.0 | 50.0 | 10.0 | 1.50x | 1.40x |"
    assert lines[-1] == "\\* r=40 clamped"
