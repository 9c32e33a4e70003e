"""Video experiments end to end on small settings: Hydra config, the embedded clips as mp4, a corrupt file skipped."""

import json
import shutil

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from tokenmerge.experiments.checkpoint import save_safetensors
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


@pytest.mark.parametrize(
    "override, message",
    [
        ("tome.merge_scope=time", "tome.merge_scope=time is not known: choose one of spacetime, frame"),
        ("tome.r=-8", "tome.r=-8 is not valid"),
        ("model.name=vit_gigantic_patch16", "model.name=vit_gigantic_patch16 is not known"),
        ("data.sampling.num_spatial_crops=2", "data.sampling: num_spatial_crops must be 1"),
        ("data=kinetics", "data.root is required"),
    ],
)
def test_video_settings_are_checked_before_any_work(override, message, tmp_path, monkeypatch):
    from tokenmerge.experiments.cli import UserError
    from tokenmerge.video import experiment

    def forbidden(*args, **kwargs):
        raise AssertionError("work started before the settings were checked")

    for name in ("load_model", "build_video_loader", "embedded_val_index"):
        monkeypatch.setattr(experiment, name, forbidden)
    with pytest.raises(UserError, match=message):
        run_evaluation(_config([override]), tmp_path)


def test_video_classes_must_match_the_model(tmp_path, tiny_weights):
    from tokenmerge.experiments.cli import SettingError

    (tmp_path / "val.csv").write_text("a.mp4,0\nb.mp4,1\n")
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "classes.txt").write_text("left\nright\n")
    cfg = _config([f"model.checkpoint={tiny_weights}", f"data.root={tmp_path / 'val.csv'}"])
    with pytest.raises(SettingError, match=rf"has 2 classes but the model embedded predicts {len(CLASSES)}"):
        run_evaluation(cfg, tmp_path / "out")
