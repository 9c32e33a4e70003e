"""Audio evaluation experiments as plain functions (the Hydra entry point wraps these)."""

from __future__ import annotations

from pathlib import Path

import torch

from tokenmerge.core import schedule_spec
from tokenmerge.core.data import cache_dir
from tokenmerge.core.evaluation import Setting, format_table, write_results

from .data import build_audio_loader, is_multilabel
from .evaluate import sweep
from .models import load_model
from .spoken_words import write_audio_dataset

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def embedded_val_index(per_class: int = 50, seed: int = 0) -> Path:
    """The embedded evaluation set (spoken words of the validation voices as WAV + val.csv), made on first use."""
    root = write_audio_dataset(cache_dir() / f"spoken_words_val_{per_class}_{seed}", "val", per_class, seed)
    return root / "val.csv"


def run_evaluation(cfg: dict, out_dir: str | Path) -> list[dict]:
    """Evaluate one configuration (the ``eval`` config's fields as a dict); writes results.json/csv to out_dir.

    The sweep contains the unmerged model (r=0) as reference, then ``cfg['tome']``'s setting.
    """
    if cfg["dtype"] not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}; got {cfg['dtype']!r}.")
    tome, data = cfg["tome"], cfg["data"]
    settings = [Setting(tome["method"], schedule_spec(tome["r"], tome["inflection"], tome["ratio"]))]
    torch.manual_seed(cfg["seed"])
    model = load_model(**cfg["model"]).to(cfg["device"])
    source = data["root"] or embedded_val_index(per_class=data["per_class"] or 50)
    loader = build_audio_loader(
        source,
        preset=data["preset"],
        classes=data["classes"],
        batch_size=data["batch_size"],
        workers=data["workers"],
        max_samples=data["max_samples"],
    )
    rows = sweep(
        model,
        loader,
        settings,
        multilabel=is_multilabel(loader),
        prop_attn=tome["prop_attn"],
        device=cfg["device"],
        throughput_batch=cfg["throughput"]["batch_size"],
        throughput_rounds=cfg["throughput"]["rounds"],
        dtype=DTYPES[cfg["dtype"]],
    )
    print(format_table(rows))
    skipped = rows[0]["skipped"]
    if skipped:
        print(f"{len(skipped)} unreadable audio files were skipped (listed in results.json)")
    write_results(rows, out_dir, model=cfg["model"]["name"], data=str(source), config=cfg)
    return rows
