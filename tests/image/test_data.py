"""ImageFolder loading with timm transforms; corrupt files are reported and skipped."""

import logging

import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

from tokenmerge.image.data import build_eval_loader
from tokenmerge.image.embedded import DATA_CONFIG
from tokenmerge.image.photo_objects import write_image_folder


@pytest.fixture()
def tiny_model():
    model = VisionTransformer(img_size=32, patch_size=8, embed_dim=16, depth=1, num_heads=2, num_classes=21)
    model.pretrained_cfg = dict(DATA_CONFIG)
    return model.eval()


def test_corrupt_file_is_reported_and_skipped(tmp_path, tiny_model, caplog):
    root = write_image_folder(tmp_path / "val", per_class=2)
    bad = root / "astronaut" / "corrupt.png"
    bad.write_bytes(b"not a png at all")
    loader = build_eval_loader(root, tiny_model, batch_size=8, workers=0)
    with caplog.at_level(logging.WARNING):
        batches = list(loader)
    assert sum(len(b.targets) for b in batches) == 42
    skipped = [s for b in batches for s in b.skipped]
    assert [s.path for s in skipped] == [str(bad)]
    assert "corrupt.png" in caplog.text
    assert batches[0].inputs.shape[1:] == (3, 32, 32) and batches[0].inputs.dtype == torch.float32


def test_missing_root_says_what_to_pass(tmp_path, tiny_model):
    with pytest.raises(FileNotFoundError, match="data.root"):
        build_eval_loader(tmp_path / "nope", tiny_model)


def test_max_samples_takes_a_spread_subset(tmp_path, tiny_model):
    root = write_image_folder(tmp_path / "val", per_class=2)
    loader = build_eval_loader(root, tiny_model, batch_size=64, workers=0, max_samples=7)
    batch = next(iter(loader))
    assert len(batch.targets) == 7 and len(set(batch.targets.tolist())) == 7
