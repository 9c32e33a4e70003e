"""Image evaluation experiments as plain functions (the Hydra entry point and the demo wrap these)."""

from __future__ import annotations

from pathlib import Path

import torch

from tokenmerge.core import schedule_spec
from tokenmerge.core.data import cache_dir

from .data import build_eval_loader
from .evaluate import Setting, format_table, sweep, write_results
from .models import load_model
from .photo_objects import write_image_folder

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def embedded_val_root(per_class: int = 50, seed: int = 0) -> Path:
    """The embedded evaluation set (held-out photo-object images as an ImageFolder), generated on first use."""
    return write_image_folder(
        cache_dir() / f"photo_objects_val_{per_class}_{seed}", "val", per_class=per_class, seed=seed
    )


def run_evaluation(cfg: dict, out_dir: str | Path) -> list[dict]:
    """Evaluate one configuration (the ``eval`` config's fields as a dict); writes results.json/csv to out_dir.

    The sweep contains the unmerged model (r=0) as reference, then ``cfg['tome']``'s setting.
    """
    if cfg["dtype"] not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}; got {cfg['dtype']!r}.")
    torch.manual_seed(cfg["seed"])
    model_cfg, data_cfg, tome = cfg["model"], cfg["data"], cfg["tome"]
    model = load_model(**model_cfg).to(cfg["device"])
    root = data_cfg["root"] or embedded_val_root()
    loader = build_eval_loader(
        root, model, batch_size=data_cfg["batch_size"], workers=data_cfg["workers"], max_samples=data_cfg["max_samples"]
    )
    spec = schedule_spec(tome["r"], tome["inflection"], tome["ratio"])
    settings = [Setting(tome["method"], spec, tome.get("merge_scope"))]
    rows = sweep(
        model,
        loader,
        settings,
        prop_attn=tome["prop_attn"],
        device=cfg["device"],
        throughput_batch=cfg["throughput"]["batch_size"],
        throughput_rounds=cfg["throughput"]["rounds"],
        dtype=DTYPES[cfg["dtype"]],
    )
    print(format_table(rows))
    write_results(rows, out_dir, model=model_cfg["name"], data=str(root), config=cfg)
    return rows
