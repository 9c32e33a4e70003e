"""Accuracy/speed sweeps on a tiny model and folder."""

import json

import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

from tokenmerge.image.data import build_eval_loader
from tokenmerge.image.embedded import DATA_CONFIG
from tokenmerge.image.evaluate import Setting, format_table, sweep, write_results
from tokenmerge.image.photo_objects import write_image_folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    torch.manual_seed(0)
    model = VisionTransformer(img_size=32, patch_size=4, embed_dim=32, depth=2, num_heads=2, num_classes=21).eval()
    model.pretrained_cfg = dict(DATA_CONFIG)
    root = write_image_folder(tmp_path_factory.mktemp("val"), per_class=2)
    return model, build_eval_loader(root, model, batch_size=16, workers=0)


def test_sweep_rows(setup, tmp_path):
    model, loader = setup
    reference_out = model(next(iter(loader)).inputs)
    settings = [Setting("tome", 8), Setting("random_drop", 8), Setting("tome", (8, -1.0))]
    rows = sweep(model, loader, settings, throughput_batch=4, throughput_rounds=1)
    assert [(r["method"], r["r"]) for r in rows] == [("tome", 0), ("tome", 8), ("random_drop", 8), ("tome", [8, -1.0])]
    base, tome = rows[0], rows[1]
    assert base["agreement"] == 1.0 and base["kl"] == pytest.approx(0, abs=1e-6) and base["ideal_speedup"] == 1.0
    assert tome["final_tokens"] == 65 - 16 and tome["schedule"] == [8, 8] and tome["ideal_speedup"] > 1.1
    assert all(0 <= r["top1"] <= r["top5"] <= 1 and r["samples"] == 42 and r["samples_per_s"] > 0 for r in rows)
    assert "forward" not in model.__dict__  # the sweep restores the model
    torch.testing.assert_close(model(next(iter(loader)).inputs), reference_out)
    json_path, csv_path = write_results(rows, tmp_path, model="tiny")
    assert json.loads(json_path.read_text())["results"][1]["r"] == 8
    assert len(csv_path.read_text().strip().splitlines()) == 5
    assert len(format_table(rows).splitlines()) == 6
