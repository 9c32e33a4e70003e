"""Video evaluation experiments as plain functions (the Hydra entry point wraps these)."""

from __future__ import annotations

from pathlib import Path

from tokenmerge.experiments.cli import SettingError
from tokenmerge.experiments.data import cache_dir
from tokenmerge.experiments.evaluation import Setting
from tokenmerge.experiments.evaluation_job import run_evaluation_job
from tokenmerge.experiments.training_job import model_size
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
from .sampling import input_size

__all__ = ["DTYPES", "check_clip_fits_model", "check_config", "embedded_val_index", "run_evaluation"]


def embedded_val_index(per_class: int = 30, seed: int = 0) -> Path:
    """The embedded evaluation set (held-out moving-objects clips as mp4 + val.csv), generated on first use."""
    root = write_video_dataset(cache_dir() / f"moving_objects_val_{per_class}_{seed}", "val", per_class, seed)
    return root / "val.csv"


def check_config(cfg: dict) -> Setting:
    """Check every setting of a video evaluation config before a model is built or a video is decoded: the shared
    settings, the sampling, the model (name, checkpoint, size) and the index (its classes against the model's).

    Returns the run's setting; raises :class:`~tokenmerge.experiments.cli.UserError` with one line on what to fix.
    """
    setting = check_run(cfg, SpatiotemporalAdapter.merge_scopes)
    data, model = cfg["data"], cfg["model"]
    try:
        sampling = _sampling(data)
    except (TypeError, ValueError) as error:
        raise SettingError(f"data.sampling: {error}") from None
    for key in ("num_frames", "img_size"):
        check_count(model.get(key), f"model.{key}", optional=True)
    num_classes = check_model_choice(model, {"embedded": WEIGHTS}, CONFIGS, "video", "MAE-ST", 400)
    if model["name"] in CONFIGS:
        model_size(model, CONFIGS[model["name"]])
    if data.get("root") == "???":
        raise SettingError("data.root is required: pass data.root=/path/to/val.csv (path,label lines) or a folder.")
    check_clip_fits_model(sampling, model)
    if data.get("root") is None:
        return setting
    check_index_classes(data, load_index, num_classes, model["name"])
    return setting


def check_clip_fits_model(sampling: ClipSampling, model: dict) -> None:
    """The clips the data makes (``data.sampling.num_frames`` x ``crop_size``) must be the model's input
    (``model.num_frames`` x ``model.img_size``, or its architecture's); checked before a video is decoded."""
    frames, side = input_size(model["name"], model.get("num_frames"), model.get("img_size"))
    if (sampling.num_frames, sampling.crop_size) == (frames, side):
        return
    raise SettingError(
        f"data.sampling makes clips of {sampling.num_frames} frames x {sampling.crop_size} px but model "
        f"{model['name']} takes {frames} frames x {side} px: set data.sampling.num_frames={frames} "
        f"data.sampling.crop_size={side} data.sampling.short_side={max(side, sampling.short_side)}, or give the model "
        f"the data's size (model.num_frames=... model.img_size=..., which a checkpoint must match)."
    )


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
