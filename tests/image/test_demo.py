"""`make demo` end to end, with small settings: every artefact is written and the table is sane."""

import json

import pytest
from PIL import Image

from tokenmerge.image.demo import run_demo
from tokenmerge.image.embedded import WEIGHTS


@pytest.mark.skipif(not WEIGHTS.is_file(), reason="embedded weights not trained yet")
def test_demo_writes_table_json_plot_and_merges(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKENMERGE_CACHE", str(tmp_path / "cache"))
    rows = run_demo(
        tmp_path / "demo", r_values=(8,), methods=("tome", "random_drop"), per_class=2, throughput_rounds=1, workers=0
    )
    assert [(r["method"], r["r"]) for r in rows] == [("tome", 0), ("tome", 8), ("random_drop", 8)]
    # Measured on these 42 held-out crops: r=0 top-1 92.9%; ToMe r=8 agrees on 100%, random dropping on 94.4%.
    assert rows[0]["top1"] >= 0.9 and rows[1]["agreement"] >= 0.97 and rows[2]["agreement"] < rows[1]["agreement"]
    payload = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert len(payload["results"]) == 3 and payload["training"]["seed"] == 0
    assert Image.open(tmp_path / "demo" / "accuracy_vs_throughput.png").size[0] > 500
    assert Image.open(tmp_path / "demo" / "merges.png").size[0] > 0


@pytest.mark.skipif(not WEIGHTS.is_file(), reason="embedded weights not trained yet")
def test_the_gallery_stacks_captioned_panels_without_gaps():
    import numpy as np

    from tokenmerge.experiments.visualize import merge_gallery
    from tokenmerge.image.demo import SHOWCASE, merge_pictures
    from tokenmerge.image.embedded import load_embedded_model

    gallery = np.asarray(merge_gallery(merge_pictures(load_embedded_model().model, r=8)))
    assert gallery.shape[1] == 2 * 192 and gallery.shape[0] > len(SHOWCASE) * 192  # panels and their captions
    assert not (gallery[-8:] == 0).all()  # no unfilled black strip at the bottom


def test_bad_input_is_one_line(tmp_path, capsys, monkeypatch):
    from tokenmerge.image import demo

    monkeypatch.delenv("TOKENMERGE_DEBUG", raising=False)
    (tmp_path / "a_file").write_text("")
    missing = tmp_path / "none.safetensors"
    cases = [
        (["--out", str(tmp_path / "a_file")], f"error: --out {tmp_path / 'a_file'} is a file: give a folder"),
        (["--out", str(tmp_path / "out")], f"error: the embedded weights {missing} are missing: train them"),
    ]
    monkeypatch.setattr(demo, "WEIGHTS", missing)
    for args, start in cases:
        with pytest.raises(SystemExit) as info:
            demo.main([*args, "--quick"])
        err = capsys.readouterr().err
        assert info.value.code == 2 and err.startswith(start) and err.count("\n") == 1, err
