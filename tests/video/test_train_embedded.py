"""The embedded video model's training script runs on the shared trainer (a few steps) and saves a loadable model."""

import pytest
import torch

from tokenmerge.experiments.embedded_training import EmbeddedRecipe
from tokenmerge.video.embedded import load_embedded_model
from tokenmerge.video.moving_objects import CLASSES, RandomClips
from tokenmerge.video.train_embedded import SingleFrameClips, main, train


def test_a_few_steps_with_merging_save_a_model_with_its_curve_and_time_controls(tmp_path):
    torch.set_num_threads(1)
    path = tmp_path / "clip.safetensors"
    recipe = EmbeddedRecipe(steps=2, batch_size=4, warmup=1, eval_every=1, workers=0, tome_r=16)
    model, run, controls = train(recipe, out=path)
    saved = load_embedded_model(path)
    assert saved.classes == list(CLASSES) and "forward" not in saved.model.__dict__  # weights only
    assert saved.info["tome_r"] == 16 and [step for step, _ in saved.info["curve"]] == [1, 2]
    assert saved.info["time_controls"] == controls and set(controls) == {"clips", "shuffled_frames", "single_frame"}
    assert saved.model(torch.randn(2, 3, 8, 32, 32)).shape == (2, len(CLASSES))


def test_single_frame_clips_repeat_one_frame_of_the_clip_the_same_way_every_time():
    clips = RandomClips(3, seed=0)
    single = SingleFrameClips(clips, seed=1)
    clip, label = single[2]
    original, original_label = clips[2]
    assert label == original_label and torch.equal(clip, single[2][0])
    assert all(torch.equal(clip[:, t], clip[:, 0]) for t in range(clip.shape[1]))
    assert any(torch.equal(clip[:, 0], original[:, t]) for t in range(original.shape[1]))


def test_bad_options_are_one_line_errors(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--steps", "0"])
    assert info.value.code == 2 and "error: --steps=0 is not valid" in capsys.readouterr().err
