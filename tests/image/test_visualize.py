"""Merge visualization: group maps, rendering at any size with 1-pixel borders, captions, and the command line."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from timm.models.vision_transformer import VisionTransformer

from tokenmerge.image import visualize_merges
from tokenmerge.image.embedded import DATA_CONFIG
from tokenmerge.image.photo_objects import load_photo
from tokenmerge.image.visualize import group_map, render_groups


def tiny_model(depth=2):
    torch.manual_seed(0)
    model = VisionTransformer(img_size=32, patch_size=4, embed_dim=32, depth=depth, num_heads=2, num_classes=3).eval()
    model.pretrained_cfg = dict(DATA_CONFIG)
    return model


def noise(height, width, seed=0, high=200):
    return Image.fromarray(np.random.default_rng(seed).integers(0, high, (height, width, 3), dtype=np.uint8))


def test_group_map_and_render():
    # 1 class token + 4 patches (2x2 grid); tokens: [cls, {p0, p1}, {p2}, {p3}]
    source = torch.tensor([[1, 0, 0, 0, 0], [0, 1, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1]], dtype=torch.float32)
    groups = group_map(source, 1, (2, 2))
    assert groups.tolist() == [[1, 1], [2, 3]]
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    image[:2, :2], image[:2, 2:] = 100, 200  # top row: two patches of one group, different colours
    out = render_groups(image, groups, border=False)
    assert (out[:2] == 150).all() and (out[2:] == 0).all()
    assert render_groups(np.zeros((7, 5, 3), np.uint8), groups, border=False).shape == (7, 5, 3)  # any size


@pytest.mark.parametrize("size", [64, 100, 384])
def test_scale_to_gives_the_size_asked(size):
    out = visualize_merges(tiny_model(), noise(50, 60), r=8, scale_to=size, labels=False)
    assert out.size == (2 * size, size)
    labelled = visualize_merges(tiny_model(), noise(50, 60), r=8, scale_to=size)
    assert labelled.width == 2 * size and labelled.height > size
    assert np.array_equal(np.asarray(labelled)[-size:], np.asarray(out))  # the captions sit above the panels


def test_borders_stay_one_pixel_wide_at_every_size():
    merged = np.asarray(visualize_merges(tiny_model(), noise(64, 64), r=8, scale_to=384, labels=False))[:, 384:]
    white = (merged == 255).all(-1)
    rows = [row for row in white if 0 < row.sum() < row.size // 2]  # rows crossed only by vertical borders
    assert rows
    for row in rows:
        starts = np.flatnonzero(np.diff(np.r_[0, row.astype(int)]) == 1)
        ends = np.flatnonzero(np.diff(np.r_[row.astype(int), 0]) == -1)
        assert (ends - starts + 1).max() == 1


def test_a_large_photo_is_shown_from_its_own_pixels_not_a_blown_up_model_input():
    photo = noise(256, 256, seed=1)
    left = np.asarray(visualize_merges(tiny_model(), photo, r=4, scale_to=256, labels=False))[:, :256]
    assert np.abs(left.astype(int) - np.asarray(photo).astype(int)).mean() < 1


def test_captions_name_model_r_tokens_and_predicted_class(monkeypatch):
    seen = {}

    def capture(panels, captions, title=None, **kwargs):
        seen.update(captions=captions, title=title)
        return panels[0]

    monkeypatch.setattr("tokenmerge.image.visualize.label_panels", capture)
    model = tiny_model()
    visualize_merges(model, noise(40, 40), r=(8, -1.0), class_names=["cat", "dog", "bird"], title="tiny ViT")
    left, right = seen["captions"]
    assert seen["title"] == "tiny ViT" and left == "model input 32x32: 65 tokens"
    assert right.startswith("ToMe r=[8, -1.0]: 49 tokens left; predicts ")  # the ramp removes 16, then 0
    assert right.split()[-1] in ("cat", "dog", "bird")
    visualize_merges(model, noise(40, 40), r=8)
    assert seen["title"] == "VisionTransformer"  # the default: the model's name (no timm architecture here)
    visualize_merges(model, noise(40, 40), r=8, method="random_drop", title="")
    assert seen["title"] == "" and seen["captions"][1].startswith("random drop r=8: ")


def test_visualize_merges_keeps_the_users_patch():
    from tokenmerge.image import apply_patch

    model = tiny_model()
    handle = apply_patch(model, r=3)
    visualize_merges(model, Image.new("RGB", (40, 40)), r=8, scale_to=32)
    assert handle.active and handle.config.r == 3
    plain = tiny_model()
    visualize_merges(plain, Image.new("RGB", (40, 40)), r=8, scale_to=32)
    assert "forward" not in plain.__dict__ and "forward_features" not in plain.__dict__


def visualize(*args, cwd):
    cmd = [sys.executable, "-m", "tokenmerge.image.visualize", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=cwd)


def test_command_line_on_a_real_photo_with_a_ramp_schedule(tmp_path):
    Image.fromarray(load_photo("coffee")).save(tmp_path / "coffee.png")
    args = ["coffee.png", "--model", "vit_tiny_patch16_224", "--random-weights", "--r", "16,-1", "--out", "m/m.png"]
    result = visualize(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    picture = Image.open(tmp_path / "m" / "m.png")
    assert picture.width == 2 * 384 and picture.height > 384


def test_command_line_errors_are_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    result = visualize("broken.jpg", cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("error: cannot read image broken.jpg (UnidentifiedImageError")
    # The other two in this process (one subprocess above checks the real exit status and stderr is enough).
    from tokenmerge.image.visualize import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as bad_r:
        main(["broken.jpg", "--r", "abc"])
    assert bad_r.value.code == 2 and capsys.readouterr().err.startswith(
        "error: --r abc: Cannot read the schedule 'abc'"
    )
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "--allow-download" in capsys.readouterr().out
