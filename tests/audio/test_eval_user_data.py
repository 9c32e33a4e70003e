"""Audio evaluation as a user with real data meets it: features checked against the model's grid before a file is
read, the paper's set named, and a stereo file read as AudioMAE reads it (the difference from a mix-down measured)."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from tokenmerge.audio import experiment
from tokenmerge.audio.data import load_audio
from tokenmerge.audio.features import fbank
from tokenmerge.experiments.cli import SettingError

REPO = Path(__file__).resolve().parents[2]
STEREO = next((p for p in (REPO.parent / "shared" / "media" / "mae_st_demo.avi",) if p.is_file()), None)


def _config(overrides):
    with initialize_config_module("tokenmerge.audio.conf", version_base=None):
        return OmegaConf.to_container(compose("eval", overrides=overrides), resolve=True)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["model=vit_base_patch16"],  # the embedded data's 128-frame features for AudioMAE's 1024-frame model
            r"data.preset=spoken_words makes 128 frames x 128 mel bins but model vit_base_patch16 takes 1024 x 128: "
            r"choose data.preset=audioset, or a model of the data's length \(model.target_length=128",
        ),
        (
            ["data=esc50", "data.root=/esc50/val.csv"],
            r"data.preset=esc50 makes 512 frames x 128 mel bins but model embedded takes 128 x 128: choose "
            r"data.preset=speechcommands or spoken_words",
        ),
    ],
)
def test_features_that_do_not_fit_the_model_stop_before_any_work(overrides, message, tmp_path, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("work started before the data was checked against the model")

    for name in ("load_model", "build_audio_loader", "embedded_val_index"):
        monkeypatch.setattr(experiment, name, forbidden)
    with pytest.raises(SettingError, match=message):
        experiment.run_evaluation(_config(overrides), tmp_path)


def test_paper_experiment_states_audiomaes_eval_count():
    cfg = _config(["experiment=paper_audioset_vit_base", "data.root=/as/eval.csv", "data.classes=/as/c.csv"])
    assert cfg["data"]["paper_samples"] == 19148 and "eval_19k.json" in cfg["data"]["paper_set"]


@pytest.mark.skipif(STEREO is None, reason="../shared/media/mae_st_demo.avi (a stereo audio track) is not here")
def test_a_real_stereo_track_read_as_audiomae_and_as_a_mix_down():
    # measured: this track's two channels are identical (dual mono), so AudioMAE's channel 0 and the mean of the
    # channels give the same features (max difference 0); a stereo file with distinct channels differs (see
    # test_data.py's tones: channel 0 keeps only the left tone)
    first, mixed = load_audio(STEREO), load_audio(STEREO, channels="mean")
    a, b = fbank(first, 16000, target_length=1024), fbank(mixed, 16000, target_length=1024)
    assert first.shape == mixed.shape and (a - b).abs().max().item() < 1e-5


def test_loader_workers_are_at_most_the_cores(monkeypatch, tmp_path):
    import os

    from tokenmerge.audio.data import build_audio_loader
    from tokenmerge.video.data import build_video_loader

    (tmp_path / "a.wav").write_bytes(b"")
    (tmp_path / "a.csv").write_text("file,label\na.wav,0\n")
    (tmp_path / "v.csv").write_text("a.wav,0\n")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})  # a 2-core machine; the data configs ask for 4
    assert build_audio_loader(tmp_path / "a.csv", workers=4).num_workers == 2
    assert build_video_loader(tmp_path / "v.csv", workers=4).num_workers == 2
    assert build_video_loader(tmp_path / "v.csv", workers=1).num_workers == 1
