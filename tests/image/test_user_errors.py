"""Bad input of every kind, as a new user meets it: checked before any work, one line on the terminal."""

import os
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from PIL import Image

from tokenmerge.experiments.cli import DataError, SettingError, UserError
from tokenmerge.image import experiment
from tokenmerge.image.checkpoint import CLI_OPTIONS, check_model
from tokenmerge.image.data import build_eval_loader, check_image_folder
from tokenmerge.image.embedded import WEIGHTS

needs_weights = pytest.mark.skipif(not WEIGHTS.is_file(), reason="embedded weights not trained yet")


def config(*overrides):
    with initialize_config_module(config_module="tokenmerge.image.conf", version_base=None):
        return OmegaConf.to_container(compose("eval", overrides=list(overrides)), resolve=True)


def image_folder(root, classes, per_class=1):
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (8, 8), (10 * i, 50, 90)).save(root / name / f"{i}.png")
    return root


@pytest.fixture()
def no_work(monkeypatch):
    """Fail the test if a model is built or a loader created: checks must come first."""

    def forbidden(*args, **kwargs):
        raise AssertionError("work started before the settings were checked")

    monkeypatch.setattr(experiment, "load_model", forbidden)
    monkeypatch.setattr(experiment, "build_eval_loader", forbidden)
    monkeypatch.setattr(experiment, "embedded_val_root", forbidden)


@needs_weights
@pytest.mark.parametrize(
    "override, message",
    [
        ("tome.r=-5", "tome.r=-5 is not valid"),
        ("tome.r=abc", "tome.r=abc is not a number of tokens"),
        ("tome.method=bogus", "tome.method=bogus is not known"),
        ("tome.ratio=0.6", r"tome.ratio=0.6 is not valid"),
        ("tome.merge_scope=frame", "tome.merge_scope=frame does not apply here"),
        ("dtype=float8", "dtype=float8 is not known"),
        ("data.batch_size=0", "data.batch_size=0 is not valid"),
        ("data.root=/nonexistent/val", r"data.root=/nonexistent/val does not exist\. Pass data.root=/path/to/val"),
        ("model.name=vit_nonexistent_model", "unknown timm model 'vit_nonexistent_model'"),
        ("model=timm", "model.name is required"),
    ],
)
def test_bad_settings_fail_before_any_work(override, message, no_work, tmp_path):
    with pytest.raises(UserError, match=message):
        experiment.run_evaluation(config(override), tmp_path)
    assert not any(tmp_path.iterdir())


def test_the_paper_experiment_asks_for_the_imagenet_folder(no_work, tmp_path):
    cfg = config("experiment=paper_imagenet_vit_large_384", "device=cpu")
    assert (cfg["model"]["name"], cfg["tome"]["r"], cfg["dtype"]) == ("vit_large_patch16_384", 23, "float16")
    with pytest.raises(SettingError, match="data.root is required for this experiment"):
        experiment.run_evaluation(cfg, tmp_path)


@needs_weights
def test_data_with_other_classes_than_the_model_stops_with_both_numbers(tmp_path, no_work):
    root = image_folder(tmp_path / "val", ["cats", "dogs"])
    with pytest.raises(SettingError, match=r"data.root=.*val has 2 classes but the model embedded predicts 21"):
        experiment.run_evaluation(config(f"data.root={root}"), tmp_path / "out")


def test_folder_layout_errors_say_the_layout(tmp_path):
    layout = r"Pass data.root=/path/to/val: a folder with one sub-folder of images per class"
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(3):
        Image.new("RGB", (8, 8)).save(flat / f"{i}.jpg")
    hollow = image_folder(tmp_path / "hollow", ["a"])
    (hollow / "b").mkdir()
    cases = [
        (tmp_path / "missing", "does not exist"),
        (tmp_path / "file.txt", "is a file, not a folder"),
        (tmp_path / "empty", "is empty"),
        (flat, "holds 3 images but no class sub-folders"),
        (hollow, "class folder b holds no images"),
    ]
    for root, message in cases:
        with pytest.raises(DataError, match=f"{message}.* {layout}"):
            check_image_folder(root)
    assert check_image_folder(image_folder(tmp_path / "good", ["b", "a"])) == ["a", "b"]


def test_the_loader_gives_the_same_hint_instead_of_torchvisions_message(tmp_path):
    hollow = image_folder(tmp_path / "hollow", ["a"])
    (hollow / "b").mkdir()
    with pytest.raises(FileNotFoundError, match="class folder b holds no images.*one sub-folder of images per class"):
        build_eval_loader(hollow, model=None)


def test_unknown_timm_models_get_close_matches_not_weight_advice():
    with pytest.raises(SettingError, match=r"unknown timm model 'deit_smal_patch16_224' \(close matches: deit_small"):
        check_model("deit_smal_patch16_224", pretrained=False)
    with pytest.raises(SettingError, match="unknown timm model 'vit_nonexistent_model'") as info:
        check_model("vit_nonexistent_model")
    assert "cache" not in str(info.value)
    with pytest.raises(SettingError, match=r"'vit_base_patch16_224.bogus' is not a known pretrained tag: choose one"):
        check_model("vit_base_patch16_224.bogus")
    with pytest.raises(SettingError, match="--model is required"):
        check_model("???", options=CLI_OPTIONS)


def test_missing_weights_name_the_options_of_the_interface(monkeypatch):
    monkeypatch.setattr("tokenmerge.image.checkpoint.cached_pretrained_file", lambda name: None)
    with pytest.raises(DataError, match="pass --checkpoint=.*, --allow-download to download them, or --random-weights"):
        check_model("vit_tiny_patch16_224", options=CLI_OPTIONS)
    with pytest.raises(DataError, match="model.checkpoint=.*model.allow_download=true.*model.pretrained=false"):
        check_model("vit_tiny_patch16_224")
    assert check_model("vit_tiny_patch16_224", pretrained=False).num_classes == 1000


def run_eval(*args, cwd, env=None):
    cmd = [sys.executable, "-m", "tokenmerge.image.run_eval", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=cwd, env=env)


@needs_weights
def test_command_line_errors_are_one_line_and_exit_2(tmp_path):
    result = run_eval("tome.r=-5", cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: tome.r=-5 is not valid: r is how many tokens each block removes, a whole number >= 0."
    ]
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").rglob("*.json"))
    debug = run_eval("tome.r=-5", cwd=tmp_path, env={**os.environ, "HYDRA_FULL_ERROR": "1"})
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "SettingError" in debug.stderr


@needs_weights
def test_a_multirun_checks_every_job_before_the_first_starts(tmp_path):
    result = run_eval("-m", "tome.r=0,8,-5", f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.splitlines() == [
        "error: job #2 (tome.r=-5): tome.r=-5 is not valid: r is how many tokens each block removes, a whole number "
        ">= 0. Nothing was run."
    ]
    assert "Launching" not in result.stdout and not (tmp_path / "sweep").exists()
