"""Merge visualization: group maps from source maps and their rendering."""

import numpy as np
import torch
from PIL import Image
from timm.models.vision_transformer import VisionTransformer

from tokenmerge.image.embedded import DATA_CONFIG
from tokenmerge.image.photo_objects import load_photo
from tokenmerge.image.visualize import group_map, render_groups, visualize_merges


def test_group_map_and_render():
    # 1 class token + 4 patches (2x2 grid); tokens: [cls, {p0, p1}, {p2}, {p3}]
    source = torch.tensor([[1, 0, 0, 0, 0], [0, 1, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1]], dtype=torch.float32)
    groups = group_map(source, 1, (2, 2))
    assert groups.tolist() == [[1, 1], [2, 3]]
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    image[:2, :2], image[:2, 2:] = 100, 200  # top row: two patches of one group, different colours
    out = render_groups(image, groups, border=False)
    assert (out[:2] == 150).all() and (out[2:] == 0).all()


def test_visualize_merges_on_a_tiny_model():
    torch.manual_seed(0)
    model = VisionTransformer(img_size=32, patch_size=4, embed_dim=32, depth=2, num_heads=2, num_classes=3).eval()
    model.pretrained_cfg = dict(DATA_CONFIG)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (50, 60, 3), dtype=np.uint8))
    out = visualize_merges(model, image, r=8, scale_to=64)
    assert out.size == (128, 64) and "forward" not in model.__dict__


def test_command_line_on_a_real_photo(tmp_path):
    import subprocess
    import sys

    photo = Image.fromarray(load_photo("coffee"))
    photo.save(tmp_path / "coffee.png")
    cmd = [
        sys.executable,
        "-m",
        "tokenmerge.image.visualize",
        str(tmp_path / "coffee.png"),
        "--model",
        "vit_tiny_patch16_224",
        "--random-weights",
        "--r",
        "16",
        "--out",
        str(tmp_path / "m.png"),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert Image.open(tmp_path / "m.png").size == (448, 224)


def test_visualize_merges_keeps_the_users_patch():
    from tokenmerge.image import apply_patch

    torch.manual_seed(0)
    model = VisionTransformer(img_size=32, patch_size=4, embed_dim=32, depth=2, num_heads=2, num_classes=3).eval()
    model.pretrained_cfg = dict(DATA_CONFIG)
    handle = apply_patch(model, r=3)
    visualize_merges(model, Image.new("RGB", (40, 40)), r=8, scale_to=32)
    assert handle.active and handle.config.r == 3
