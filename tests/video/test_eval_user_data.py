"""Video evaluation as a user with real data meets it: the clips are checked against the model before anything is
decoded, and the run ends with how many samples it evaluated against the index and the paper's set, and how many
of them were shorter than one clip (counted once per run, also when the reference comes from a cache)."""

import json
import logging

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from tokenmerge.experiments.checkpoint import save_safetensors
from tokenmerge.experiments.cli import SettingError
from tokenmerge.video import experiment
from tokenmerge.video.data import SHORT_VIDEO
from tokenmerge.video.embedded import create_embedded_model
from tokenmerge.video.moving_objects import CLASSES

from .short_videos import write_short_video


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
        "noted": {},
        "paper": 12,
        "paper_set": None,
    }
    out = capsys.readouterr().out
    assert (
        f"samples: evaluated {len(CLASSES)} of {listed} listed in the index (2 unreadable, skipped); the paper's set "
        f"has 12: {12 - len(CLASSES):+d} samples" in out
    )
    assert "WARNING: 2 unreadable files skipped" in out


def _with_short_videos(tmp_path, monkeypatch):
    """(tiny weights, an index of the embedded clips (8 frames: exactly one clip) and two videos of 5 and 7 frames
    (shorter than one clip of 8), the short videos' paths)."""
    monkeypatch.setenv("TOKENMERGE_CACHE", str(tmp_path / "cache"))
    model = create_embedded_model(len(CLASSES), depth=1, embed_dim=32, num_heads=2)
    weights = save_safetensors(model, tmp_path / "tiny.safetensors", arch=model.arch, classes=list(CLASSES))
    root = experiment.embedded_val_index(per_class=1).parent
    short = [write_short_video(root / "clips" / f"short_{n}.mp4", n) for n in (5, 7)]
    (root / "short.csv").write_text((root / "val.csv").read_text() + "clips/short_5.mp4,0\nclips/short_7.mp4,1\n")
    return weights, root / "short.csv", [str(path) for path in short]


def _short_config(weights, index):
    overrides = [f"model.checkpoint={weights}", f"data.root={index}", "data.workers=0", "data.batch_size=4"]
    return _config([*overrides, "tome.r=2", "throughput.batch_size=1", "throughput.rounds=1"])


def _assert_short_videos_reported(out_dir, short, printed, caplog):
    listed = len(CLASSES) + 2
    saved = json.loads((out_dir / "results.json").read_text())
    assert saved["samples"]["evaluated"] == listed and saved["samples"]["skipped"] == 0
    assert saved["samples"]["noted"] == {SHORT_VIDEO: 2} and saved["noted_files"] == {SHORT_VIDEO: 2}
    assert [sorted(row["noted"][SHORT_VIDEO]) for row in saved["results"]] == [sorted(short)] * 2
    line = f"samples: evaluated {listed} of {listed} listed in the index (2 {SHORT_VIDEO})"
    assert printed.count(line) == 1 and printed.count("samples: evaluated") == 1
    assert "2 samples shorter than one clip, last frame repeated (listed in results.json)" in printed  # the table
    reports = [r.getMessage() for r in caplog.records if SHORT_VIDEO in r.getMessage()]
    assert len(reports) == 1  # once for the sweep, not per setting or per file
    assert "short_5.mp4 (5 frames; a clip spans 8)" in reports[0] and "short_7.mp4 (7 frames" in reports[0]
    assert "coffee_000.mp4" not in reports[0]  # 8 frames: exactly one clip, not noted


def test_videos_shorter_than_one_clip_are_counted_in_the_results_and_the_summary(tmp_path, monkeypatch, capsys, caplog):
    weights, index, short = _with_short_videos(tmp_path, monkeypatch)
    with caplog.at_level(logging.INFO):
        experiment.run_evaluation(_short_config(weights, index), tmp_path / "run")
    _assert_short_videos_reported(tmp_path / "run", short, capsys.readouterr().out, caplog)


def test_a_resumed_sweep_reports_the_short_videos_of_its_cached_predictions(tmp_path, monkeypatch, capsys, caplog):
    weights, index, short = _with_short_videos(tmp_path, monkeypatch)
    cache = tmp_path / "sweep" / "reference" / "unmerged.pt"
    cfg = _short_config(weights, index)
    experiment.run_evaluation(cfg, tmp_path / "first", reference_cache=cache)
    capsys.readouterr()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        experiment.run_evaluation(cfg, tmp_path / "resumed", reference_cache=cache)
    assert any("predictions read from" in r.getMessage() for r in caplog.records)  # the reference came from the cache
    _assert_short_videos_reported(tmp_path / "resumed", short, capsys.readouterr().out, caplog)
