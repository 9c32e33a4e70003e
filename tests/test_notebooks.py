"""Every notebook runs top to bottom (small settings via TOKENMERGE_NOTEBOOK_QUICK=1)."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tokenmerge.audio.embedded import WEIGHTS_TOME as AUDIO_WEIGHTS
from tokenmerge.image.embedded import WEIGHTS as IMAGE_WEIGHTS
from tokenmerge.video.embedded import WEIGHTS as VIDEO_WEIGHTS

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))
NEEDS = {
    "image.ipynb": IMAGE_WEIGHTS,
    "video.ipynb": VIDEO_WEIGHTS,
    "audio.ipynb": AUDIO_WEIGHTS,
}  # embedded weights each notebook runs on


def test_notebooks_are_committed_without_outputs():
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{path.name} has outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path, tmp_path, monkeypatch):
    if not NEEDS[path.name].is_file():
        pytest.skip(f"embedded weights {NEEDS[path.name].name} not trained yet")
    monkeypatch.setenv("TOKENMERGE_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("TOKENMERGE_CACHE", str(tmp_path / "cache"))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert not (tmp_path / "results").exists(), "the notebook wrote results/ into the folder it runs in"
    streams = "".join(o["text"] for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "stream")
    assert "\r" not in streams and len(streams) < 20_000, "progress bars bloat the executed notebook"
