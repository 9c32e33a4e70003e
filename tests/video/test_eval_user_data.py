"""Video evaluation as a user with real data meets it: the clips are checked against the model before anything is
decoded, and the run ends with how many samples it evaluated against the index and the paper's set."""

import json

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from tokenmerge.experiments.checkpoint import save_safetensors
from tokenmerge.experiments.cli import SettingError
from tokenmerge.video import experiment
from tokenmerge.video.embedded import create_embedded_model
from tokenmerge.video.moving_objects import CLASSES


def _config(overrides):
    with initialize_config_module("tokenmerge.video.conf", version_base=None):
        return OmegaConf.to_container(compose("eval", overrides=overrides), resolve=True)


def _forbid_work(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("work started before the data was checked against the model")

    for name in ("load_model", "build_video_loader", "embedded_val_index"):
        monkeypatch.setattr(experiment, name, forbidden)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["model=vit_base_patch16"],  # the embedded data's 8 x 32 clips for a 16 x 224 model
            r"data.sampling makes clips of 8 frames x 32 px but model vit_base_patch16 takes 16 frames x 224 px: "
            r"set data.sampling.num_frames=16 data.sampling.crop_size=224 data.sampling.short_side=224",
        ),
        (
            ["model=vit_large_patch16", "data=kinetics", "data.root=/k400/val.csv", "data.sampling.num_frames=8"],
            r"clips of 8 frames x 224 px but model vit_large_patch16 takes 16 frames x 224 px",
        ),
        (
            ["data.sampling.crop_size=64", "data.sampling.short_side=64"],
            r"clips of 8 frames x 64 px but model embedded takes 8 frames x 32 px",
        ),
    ],
)
def test_clips_that_do_not_fit_the_model_stop_before_any_work(overrides, message, tmp_path, monkeypatch):
    _forbid_work(monkeypatch)
    with pytest.raises(SettingError, match=message):
        experiment.run_evaluation(_config(overrides), tmp_path)


def test_paper_experiment_states_the_papers_set():
    cfg = _config(["experiment=paper_k400_vit_large", "data.root=/k400/val.csv"])
    assert cfg["data"]["paper_samples"] == 20000 and "Kinetics-400" in cfg["data"]["paper_set"]


def test_the_run_ends_with_the_counts_and_says_loudly_when_files_were_skipped(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TOKENMERGE_CACHE", str(tmp_path / "cache"))
    model = create_embedded_model(len(CLASSES), depth=1, embed_dim=32, num_heads=2)
    weights = save_safetensors(model, tmp_path / "tiny.safetensors", arch=model.arch, classes=list(CLASSES))
    root = experiment.embedded_val_index(per_class=1).parent
    (root / "clips" / "broken.mp4").write_bytes(b"not a video")
    (root / "bad.csv").write_text((root / "val.csv").read_text() + "clips/broken.mp4,1\nclips/missing.mp4,2\n")
    cfg = _config(
        [
            f"model.checkpoint={weights}",
            f"data.root={root / 'bad.csv'}",
            "data.workers=0",
            "+data.paper_samples=12",
            "throughput.batch_size=1",
            "throughput.rounds=1",
        ]
    )
    experiment.run_evaluation(cfg, tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    listed = len(CLASSES) + 2
    assert saved["samples"] == {
        "evaluated": len(CLASSES),
        "listed": listed,
        "selected": listed,
        "skipped": 2,  # the corrupt file and the one listed but missing
        "paper": 12,
        "paper_set": None,
    }
    out = capsys.readouterr().out
    assert (
        f"samples: evaluated {len(CLASSES)} of {listed} listed in the index (2 unreadable, skipped); the paper's set "
        f"has 12: {12 - len(CLASSES):+d} samples" in out
    )
    assert "WARNING: 2 unreadable files skipped" in out
