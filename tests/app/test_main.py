"""The ``tokenmerge`` console script: help on every level, commands routed, user errors as one line."""

import json
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tests.commands import run_module
from tokenmerge.app.main import main


def _tokenmerge(*args: str) -> subprocess.CompletedProcess:
    return run_module("tokenmerge.app.main", *args)


REPO = Path(__file__).resolve().parents[2]
MEDIA = [REPO.parent / "shared" / "media", Path("/work/shared/media")]
MEDIA_VIDEO = next((m / "mae_st_demo.avi" for m in MEDIA if (m / "mae_st_demo.avi").is_file()), None)


@pytest.mark.parametrize("args", [[], ["demo"], ["eval"], ["train"], ["visualize"], ["bench"]])
def test_help_on_every_level(args, capsys):
    with pytest.raises(SystemExit) as info:
        main([*args, "--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0 and out.startswith("usage: tokenmerge")


def test_eval_help_shows_the_hydra_config_groups():
    done = _tokenmerge("eval", "audio", "--help")
    assert done.returncode == 0 and "model: " in done.stdout and "embedded_tome" in done.stdout


def test_eval_runs_the_modality_and_bad_input_is_one_line(tmp_path):
    done = _tokenmerge("eval", "image", "tome.r=-5", f"hydra.run.dir={tmp_path}")
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0, done.stderr
    assert done.stderr.startswith("error: ") and "tome.r" in done.stderr and "Traceback" not in done.stderr
    done = _tokenmerge("demo", "--only", "speech", "--out", str(tmp_path))
    assert done.returncode == 2 and done.stderr.strip() == (
        "error: --only: unknown modality speech; choose from image, video, audio."
    )


def test_unknown_command_or_modality_is_refused(capsys):
    for args in (["nothing"], ["eval", "speech"], ["train", "speech"], ["visualize", "speech"], ["bench", "nothing"]):
        with pytest.raises(SystemExit) as info:
            main(args)
        assert info.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_bench_runs_a_benchmark_script(tmp_path):
    done = _tokenmerge("bench", "merge-overhead", "--help")
    assert done.returncode == 0 and "usage" in done.stdout


def test_bench_paper_times_a_paper_setting_against_random_dropping(tmp_path):
    out = tmp_path / "paper.json"
    args = ("--settings", "image-vit-s", "--batches", "1", "--rounds", "1", "--warmup", "0", "--out", str(out))
    done = _tokenmerge("bench", "paper", *args, "--attention", "mask", "folded")
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(out.read_text())["results"]
    assert [row["variant"] for row in rows] == ["unpatched", "ToMe", "ToMe folded", "random drop"]
    tome = rows[1]
    assert {row["setting"] for row in rows} == {"image-vit-s"}
    assert tome["r"] == 13 and tome["batch"] == 1 and abs(tome["ideal_speedup"] - 1.70) < 0.01
    assert abs(tome["behind_random_drop"] - (1 - tome["samples_per_s"] / rows[3]["samples_per_s"])) < 1e-9


def test_train_passes_through_to_each_modality(tmp_path, capsys):
    done = _tokenmerge("train", "video", "--help")
    assert done.returncode == 0 and "drop_path_rate" in done.stdout and "val_per_class" in done.stdout
    # only what training takes: the fine-tuning recipe, not evaluation's experiments or data groups
    assert (
        "experiment=NAME         paper_k400_vit_large_finetune" in done.stdout
        and "model.pretrained=PATH" in done.stdout
    )
    assert "Configuration groups" not in done.stdout and "kinetics" not in done.stdout
    done = _tokenmerge("train", "audio", "tome.r=-5", f"hydra.run.dir={tmp_path}")
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0, done.stderr[-2000:]
    assert done.stderr.startswith("error: tome.r=-5") and "Traceback" not in done.stderr
    done = _tokenmerge("train", "audio", "--help")
    assert "paper_audioset_vit_base_finetune" in done.stdout and "esc50" not in done.stdout
    done = _tokenmerge("train", "image", "--help")
    assert done.returncode == 0 and "train_size" in done.stdout and "allow_download" in done.stdout


@pytest.mark.parametrize("modality", ["video", "audio"])
def test_visualize_draws_an_embedded_clip_by_default(modality, tmp_path, capsys):
    out = tmp_path / "pictures" / f"{modality}.png"
    main(["visualize", modality, "--out", str(out)])
    assert f"wrote {out}" in capsys.readouterr().out
    picture = Image.open(out)
    assert picture.mode == "RGB" and picture.width > 100 and picture.height > 100


@pytest.mark.parametrize("modality", ["video", "audio"])
def test_visualize_a_missing_file_is_one_line(modality, tmp_path):
    done = _tokenmerge("visualize", modality, str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "m.png"))
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0, done.stderr[-2000:]
    assert done.stderr.startswith(f"error: {'audio' if modality == 'audio' else 'video'} {tmp_path / 'missing.mp4'}")
    assert "does not exist" in done.stderr and not (tmp_path / "m.png").exists()


def test_visualize_bad_options_are_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TOKENMERGE_DEBUG", raising=False)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    (tmp_path / "noise.wav").write_bytes(b"RIFF not really a wave file")
    cases = [
        (["visualize", "video", "--r", "abc"], "error: --r abc: "),
        (["visualize", "video", "--model", "vit_base_patch16"], "error: --model vit_base_patch16 takes 16 frames"),
        (["visualize", "audio", str(tmp_path / "noise.wav")], f"error: cannot read audio {tmp_path / 'noise.wav'}"),
        (["visualize", "audio", "--r", "[8,8]"], "error: --r [8,8]: "),
    ]
    for args, start in cases:
        with pytest.raises(SystemExit) as info:
            main([*args, "--out", str(tmp_path / "m.png")])
        err = capsys.readouterr().err
        assert info.value.code == 2 and err.startswith(start) and err.count("\n") == 1, err


@pytest.mark.skipif(MEDIA_VIDEO is None, reason="no shared media (../shared/media/mae_st_demo.avi)")
def test_visualize_a_real_video_and_its_audio_track(tmp_path, capsys):
    main(["visualize", "video", str(MEDIA_VIDEO), "--scope", "spacetime", "--out", str(tmp_path / "v.png")])
    main(["visualize", "audio", str(MEDIA_VIDEO), "--start", "2", "--out", str(tmp_path / "a.png")])
    assert capsys.readouterr().out.count("wrote ") == 2
    assert Image.open(tmp_path / "v.png").width == 8 * 128  # the embedded model's 8 frames, 128 px each
    assert Image.open(tmp_path / "a.png").height > 128
