"""Model loading without downloads, embedded checkpoint round trip, and the Hydra evaluation entry point."""

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from tokenmerge.image.checkpoint import load_model
from tokenmerge.image.embedded import (
    WEIGHTS,
    create_embedded_model,
    load_embedded_model,
    read_metadata,
    save_embedded_model,
)
from tokenmerge.image.experiment import run_evaluation


def test_uncached_timm_weights_raise_instead_of_downloading(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr("tokenmerge.image.checkpoint.cached_pretrained_file", lambda name: None)
    with pytest.raises(FileNotFoundError, match="model.checkpoint"):
        load_model("vit_tiny_patch16_224")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model("vit_tiny_patch16_224", checkpoint=str(tmp_path / "missing.safetensors"))


def test_timm_checkpoint_path_loads(tmp_path):
    import timm
    from safetensors.torch import save_file

    source = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=5)
    path = tmp_path / "w.safetensors"
    save_file(source.state_dict(), str(path))
    loaded = load_model("vit_tiny_patch16_224", checkpoint=str(path), num_classes=5)
    assert torch.equal(loaded.head.weight, source.head.weight) and torch.equal(loaded.pos_embed, source.pos_embed)


def test_embedded_save_load_round_trip(tmp_path):
    model = create_embedded_model(4, depth=1)
    path = save_embedded_model(model, ["a", "b", "c", "d"], tmp_path / "m.safetensors", note="test")
    meta = read_metadata(path)
    assert meta["classes"] == ["a", "b", "c", "d"] and meta["info"]["note"] == "test"
    with pytest.raises(ValueError, match="does not fit"):
        load_embedded_model(path)  # saved with depth 1, the metadata says the default depth


@pytest.mark.skipif(not WEIGHTS.is_file(), reason="embedded weights not trained yet")
def test_hydra_config_composes_and_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKENMERGE_CACHE", str(tmp_path / "cache"))
    with initialize_config_module(config_module="tokenmerge.image.conf", version_base=None):
        cfg = compose(
            "eval",
            overrides=[
                "tome.r=8",
                "data.max_samples=42",
                "data.workers=0",
                "throughput.rounds=1",
                "throughput.batch_size=4",
            ],
        )
    rows = run_evaluation(OmegaConf.to_container(cfg, resolve=True), tmp_path / "out")
    assert [(row["method"], row["r"]) for row in rows] == [("tome", 0), ("tome", 8)]
    assert rows[0]["agreement"] == 1.0 and rows[1]["final_tokens"] < rows[0]["final_tokens"]
    assert rows[1]["ideal_speedup"] > 1.2
    assert (tmp_path / "out" / "results.json").is_file() and (tmp_path / "out" / "results.csv").is_file()
    assert Path(WEIGHTS).stat().st_size < 8 * 2**20


def test_hydra_entry_point_resolves_overrides():
    import subprocess
    import sys

    cmd = [
        sys.executable,
        "-m",
        "tokenmerge.image.run_eval",
        "--cfg",
        "job",
        "model=vit_base_patch16_224",
        "tome.r=16",
        "tome.inflection=-1.0",
        "data.root=/data/val",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    cfg = OmegaConf.create(result.stdout)
    assert cfg.model.name == "vit_base_patch16_224" and cfg.tome.r == 16 and cfg.data.root == "/data/val"
    assert cfg.tome.prop_attn is True and cfg.tome.method == "tome"
