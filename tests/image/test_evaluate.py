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
    table = format_table(rows).splitlines()
    assert len(table) == 7 and table[-1].startswith("ToMe's top-1 and agreement are at or above random_drop")


def test_random_baselines_over_seeds_are_drawn_apart_and_averaged(setup, caplog):
    from tokenmerge.experiments.evaluation import average_over_seeds

    model, loader = setup
    settings = [Setting("random_drop", 8, seed=seed) for seed in (0, 1, 2)] + [Setting("random_drop", 1000, seed=1)]
    settings.append(Setting("tome", 1000))  # the same clamp as the last: its note is logged once for both
    with caplog.at_level("INFO"):
        rows = sweep(model, loader, settings, throughput_batch=4, throughput_rounds=1)
    assert [row["seed"] for row in rows] == [0, 0, 1, 2, 1, 0] and settings[1].name == "random_drop r=8 seed=1"
    assert len({row["kl"] for row in rows[1:4]}) == 3  # each seed draws other tokens
    assert rows[1]["samples_per_s"] == rows[2]["samples_per_s"] == rows[3]["samples_per_s"]  # timed once
    assert caplog.text.count("r=1000 clamped") == 1 and rows[4]["note"].startswith("r=1000 clamped")
    merged = average_over_seeds(rows)
    assert [(row["method"], row["r"], row["seeds"]) for row in merged] == [
        ("tome", 0, [0]),
        ("random_drop", 8, [0, 1, 2]),
        ("random_drop", 1000, [1]),
        ("tome", 1000, [0]),
    ]
    assert rows[5]["note"] == rows[4]["note"] and [
        r.levelname for r in caplog.records if "clamped" in r.getMessage()
    ] == ["INFO"]
    drop = merged[1]
    assert drop["top1_by_seed"] == [row["top1"] for row in rows[1:4]] and "seed" not in drop
    assert drop["kl"] == pytest.approx(sum(row["kl"] for row in rows[1:4]) / 3)
    assert drop["top1"] == pytest.approx(sum(drop["top1_by_seed"]) / 3)
    assert "\nrandom_drop: mean over seeds 0, 1, 2 (each seed's scores are in results.json)\n" in format_table(merged)


class CountingLoader:
    """A loader that counts how often it is iterated (one pass per evaluated setting)."""

    def __init__(self, loader):
        self.loader, self.passes = loader, 0

    def __iter__(self):
        self.passes += 1
        return iter(self.loader)


def test_every_setting_is_checked_before_any_batch_is_read(setup):
    from tokenmerge.experiments.cli import SettingError

    model, loader = setup
    counting = CountingLoader(loader)
    with pytest.raises(SettingError, match=r"tome r=\[8, 8, 8\]: A per-layer schedule needs one r per layer \(2\)"):
        sweep(model, counting, [Setting("tome", 4), Setting("tome", [8, 8, 8])], throughput_rounds=1)
    assert counting.passes == 0 and "forward" not in model.__dict__


def test_a_clamped_setting_says_so_and_records_its_real_schedule(setup, tmp_path, caplog):
    model, loader = setup
    with caplog.at_level("INFO"):
        rows = sweep(model, loader, [Setting("tome", 1000)], throughput_batch=4, throughput_rounds=1)
    clamped = rows[1]
    assert clamped["r"] == 1000 and clamped["schedule"] == [32, 16] and clamped["tokens_per_layer"] == [65, 33, 17]
    assert clamped["note"].startswith("r=1000 clamped") and "65 -> 17 tokens" in clamped["note"]
    assert rows[0]["note"] == "" and "r=1000 clamped" in caplog.text
    table = format_table(rows)
    assert "1000*" in table and "* r=1000 clamped" in table
    json_path, csv_path = write_results(rows, tmp_path)
    saved = json.loads(json_path.read_text())["results"][1]
    assert saved["schedule"] == [32, 16] and saved["note"] == clamped["note"]
    assert "32 16" in csv_path.read_text()


def test_unreadable_files_are_reported_once_per_sweep(tmp_path, caplog):
    import logging

    torch.manual_seed(0)
    model = VisionTransformer(img_size=32, patch_size=8, embed_dim=16, depth=1, num_heads=2, num_classes=21).eval()
    model.pretrained_cfg = dict(DATA_CONFIG)
    root = write_image_folder(tmp_path / "val", per_class=1)
    (root / "astronaut" / "corrupt.png").write_bytes(b"not a png")
    loader = build_eval_loader(root, model, batch_size=8, workers=0)
    with caplog.at_level(logging.WARNING):
        rows = sweep(model, loader, [Setting("tome", 2), Setting("random_drop", 2)], throughput_rounds=1)
    reports = [record.getMessage() for record in caplog.records if "corrupt.png" in record.getMessage()]
    assert len(reports) == 1 and reports[0].startswith("1 unreadable file skipped")
    assert all(row["skipped"] == [str(root / "astronaut" / "corrupt.png")] for row in rows)
    assert format_table(rows).endswith("1 unreadable file skipped (listed in results.json)")
    json_path, _ = write_results(rows, tmp_path / "out")
    assert json.loads(json_path.read_text())["skipped_files"] == 1


def test_the_reference_pass_is_cached_for_the_jobs_of_a_sweep(setup, tmp_path):
    model, loader = setup
    cache = tmp_path / "reference" / "unmerged.pt"
    counting = CountingLoader(loader)
    first = sweep(model, counting, [Setting("tome", 4)], throughput_rounds=1, reference_cache=cache)
    assert counting.passes == 2 and cache.is_file()
    second = sweep(model, counting, [Setting("random_drop", 4)], throughput_rounds=1, reference_cache=cache)
    assert counting.passes == 3  # only the new setting read the data
    assert second[0]["top1"] == first[0]["top1"] and second[0]["gflops"] == first[0]["gflops"]
    fresh = sweep(model, loader, [Setting("random_drop", 4)], throughput_rounds=1)  # the reference computed anew
    assert [(row["agreement"], row["kl"]) for row in second] == [(row["agreement"], row["kl"]) for row in fresh]


def test_accuracy_is_computed_in_the_configured_dtype_and_rows_say_so(setup, tmp_path):
    model, loader = setup
    cache = tmp_path / "reference.pt"
    rows = sweep(
        model,
        loader,
        [Setting("tome", 8)],
        throughput_batch=4,
        throughput_rounds=1,
        dtype=torch.bfloat16,
        reference_cache=cache,
    )
    assert [(row["accuracy_dtype"], row["speed_dtype"]) for row in rows] == [("bfloat16", "bfloat16")] * 2
    assert next(model.parameters()).dtype == torch.float32  # the sweep puts the model back
    batches = [batch.inputs for batch in loader]
    with torch.inference_mode():
        in_float32 = torch.cat([model(inputs) for inputs in batches])
        model.to(torch.bfloat16)
        in_bfloat16 = torch.cat([model(inputs.to(torch.bfloat16)).float() for inputs in batches])
    model.float()
    saved = torch.load(cache, weights_only=True)["logits"]
    assert (in_bfloat16 - in_float32).abs().amax() > 1e-3  # the two dtypes are told apart
    torch.testing.assert_close(saved, in_bfloat16, rtol=0, atol=0)
    rows = sweep(model, loader, [], throughput_batch=4, throughput_rounds=1, reference_cache=cache)
    assert rows[0]["accuracy_dtype"] == "float32"
    torch.testing.assert_close(torch.load(cache, weights_only=True)["logits"], in_float32)  # not the bfloat16 cache
