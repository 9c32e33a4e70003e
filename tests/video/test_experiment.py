"""Video experiments end to end on small settings: Hydra config, the embedded clips as mp4, a corrupt file skipped."""

import json
import shutil

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from tokenmerge.core.checkpoint import save_safetensors
from tokenmerge.video.embedded import create_embedded_model
from tokenmerge.video.experiment import run_evaluation
from tokenmerge.video.moving_objects import CLASSES


def _config(overrides):
    with initialize_config_module("tokenmerge.video.conf", version_base=None):
        return OmegaConf.to_container(compose("eval", overrides=overrides), resolve=True)


def test_paper_experiment_composes():
    cfg = _config(["experiment=paper_k400_vit_large", "data.root=/k400/val.csv"])
    assert cfg["model"]["name"] == "vit_large_patch16" and cfg["tome"]["merge_scope"] == "spacetime"
    assert cfg["tome"]["prop_attn"] is False and cfg["data"]["sampling"]["num_temporal_views"] == 10


@pytest.fixture
def tiny_weights(tmp_path):
    model = create_embedded_model(len(CLASSES), depth=1, embed_dim=32, num_heads=2)
    return save_safetensors(model, tmp_path / "tiny.safetensors", arch=model.arch, classes=list(CLASSES))


def test_embedded_run_with_a_corrupt_video(tmp_path, tiny_weights, monkeypatch):
    monkeypatch.setenv("TOKENMERGE_CACHE", str(tmp_path / "cache"))
    cfg = _config(
        [
            f"model.checkpoint={tiny_weights}",
            "data.per_class=2",
            "data.workers=0",
            "tome.r=16",
            "tome.merge_scope=frame",
            "throughput.batch_size=2",
            "throughput.rounds=1",
        ]
    )
    rows = run_evaluation(cfg, tmp_path / "run")
    assert [r["merge_scope"] for r in rows] == ["spacetime", "frame"] and rows[1]["schedule"] == [16]
    assert rows[0]["samples"] == 2 * len(CLASSES) and rows[0]["agreement"] == 1.0

    root = tmp_path / "cache" / "moving_objects_val_2_0"
    (root / "clips" / "broken.mp4").write_bytes(b"not a video at all")
    truncated = root / "clips" / "truncated.mp4"
    shutil.copy(root / "clips" / "coffee_000.mp4", truncated)
    truncated.write_bytes(truncated.read_bytes()[:300])
    (root / "with_bad.csv").write_text((root / "val.csv").read_text() + "clips/broken.mp4,1\nclips/truncated.mp4,2\n")
    cfg["data"]["root"] = str(root / "with_bad.csv")
    rows = run_evaluation(cfg, tmp_path / "bad")
    assert rows[0]["samples"] == 2 * len(CLASSES)
    assert sorted(p.rsplit("/", 1)[-1] for p in rows[0]["skipped"]) == ["broken.mp4", "truncated.mp4"]
    saved = json.loads((tmp_path / "bad" / "results.json").read_text())
    assert len(saved["results"][1]["skipped"]) == 2
