"""Video evaluation experiments as plain functions (the Hydra entry point wraps these)."""

from __future__ import annotations

from pathlib import Path

from tokenmerge.experiments.cli import SettingError
from tokenmerge.experiments.data import cache_dir
from tokenmerge.experiments.evaluation import Setting
from tokenmerge.experiments.evaluation_job import run_evaluation_job
from tokenmerge.experiments.validation import (
    DTYPES,
    check_count,
    check_index_classes,
    check_model_choice,
    check_run,
)

from .checkpoint import load_model
from .data import ClipSampling, build_video_loader, load_index
from .embedded import WEIGHTS
from .evaluate import sweep
from .model import CONFIGS
from .moving_objects import write_video_dataset
from .patch import SpatiotemporalAdapter

__all__ = ["DTYPES", "check_config", "embedded_val_index", "run_evaluation"]


def embedded_val_index(per_class: int = 30, seed: int = 0) -> Path:
    """The embedded evaluation set (held-out moving-objects clips as mp4 + val.csv), generated on first use."""
    root = write_video_dataset(cache_dir() / f"moving_objects_val_{per_class}_{seed}", "val", per_class, seed)
    return root / "val.csv"


def check_config(cfg: dict) -> Setting:
    """Check every setting of a video evaluation config before a model is built or a video is decoded: the shared
    settings, the sampling, the model (name, checkpoint) and the index (its classes against the model's).

    Returns the run's setting; raises :class:`~tokenmerge.experiments.cli.UserError` with one line on what to fix.
    """
    setting = check_run(cfg, SpatiotemporalAdapter.merge_scopes)
    data, model = cfg["data"], cfg["model"]
    try:
        _sampling(data)
    except (TypeError, ValueError) as error:
        raise SettingError(f"data.sampling: {error}") from None
    for key in ("num_frames", "img_size"):
        check_count(model.get(key), f"model.{key}", optional=True)
    num_classes = check_model_choice(model, {"embedded": WEIGHTS}, CONFIGS, "video", "MAE-ST", 400)
    if data.get("root") in (None, "???"):
        if data.get("root") == "???":
            raise SettingError("data.root is required: pass data.root=/path/to/val.csv (path,label lines) or a folder.")
        return setting
    check_index_classes(data, load_index, num_classes, model["name"])
    return setting


def _sampling(data: dict) -> ClipSampling:
    sampling = data["sampling"]
    return ClipSampling(**{**sampling, "mean": tuple(sampling["mean"]), "std": tuple(sampling["std"])})


def run_evaluation(cfg: dict, out_dir: str | Path, reference_cache: str | Path | None = None) -> list[dict]:
    """Evaluate one configuration (the ``eval`` config's fields as a dict); writes results.json/csv to out_dir.

    Every setting is checked first (:func:`check_config`). The sweep contains the unmerged model (r=0) as
    reference, then ``cfg['tome']``'s setting; ``reference_cache`` lets the jobs of a multirun share the reference.
    Runs in one process or under torchrun (see :func:`tokenmerge.experiments.evaluation_job.run_evaluation_job`).
    """
    setting = check_config(cfg)
    data = cfg["data"]
    source = data["root"] or embedded_val_index(per_class=data["per_class"] or 30)

    def build_loader(model):
        return source, build_video_loader(
            source,
            sampling=_sampling(data),
            classes=data["classes"],
            batch_size=data["batch_size"],
            workers=data["workers"],
            max_samples=data["max_samples"],
        )

    return run_evaluation_job(
        cfg, out_dir, setting, lambda: load_model(**cfg["model"]), build_loader, sweep, reference_cache
    )
