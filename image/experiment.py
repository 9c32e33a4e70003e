"""Image evaluation experiments as plain functions (the Hydra entry point and the demo wrap these)."""

from __future__ import annotations

from pathlib import Path

from tokenmerge.experiments.cli import SettingError
from tokenmerge.experiments.data import cache_dir
from tokenmerge.experiments.evaluation import Setting
from tokenmerge.experiments.evaluation_job import run_evaluation_job
from tokenmerge.experiments.validation import DTYPES, check_num_classes, check_run

from .checkpoint import check_model, load_model
from .data import build_eval_loader, check_image_folder
from .evaluate import sweep
from .photo_objects import PHOTOS, write_image_folder

__all__ = ["DTYPES", "check_config", "embedded_val_root", "run_evaluation"]


def embedded_val_root(per_class: int = 50, seed: int = 0) -> Path:
    """The embedded evaluation set (held-out photo-object images as an ImageFolder), generated on first use."""
    return write_image_folder(
        cache_dir() / f"photo_objects_tiles_val_{per_class}_{seed}", "val", per_class=per_class, seed=seed
    )


def check_config(cfg: dict) -> Setting:
    """Check every setting of an evaluation config (the ``eval`` config as a dict) without building a model or
    reading an image: the shared settings, the model (name, weights) and the data folder (layout, classes).

    Returns the run's setting; raises :class:`~tokenmerge.experiments.cli.UserError` with one line on what to fix.
    """
    setting = check_run(cfg)
    model, data = cfg["model"], cfg["data"]
    root = data.get("root")
    if root == "???":
        raise SettingError("data.root is required for this experiment: pass data.root=/path/to/imagenet/val.")
    info = check_model(**model)
    classes = sorted(PHOTOS) if root is None else check_image_folder(root)
    where = "the embedded photo-object set (data.root=null)" if root is None else f"data.root={root}"
    if info.num_classes is not None:
        check_num_classes(len(classes), info.num_classes, where, f"model {model['name']}")
    if info.classes is not None and sorted(info.classes) != classes:
        unknown = sorted(set(classes) - set(info.classes))[:5]
        raise SettingError(
            f"{where}: class folders {', '.join(unknown)} are not classes of model {model['name']} (its classes: "
            f"{', '.join(info.classes[:5])}, ...): the folders must be named after the model's classes."
        )
    return setting


def run_evaluation(cfg: dict, out_dir: str | Path, reference_cache: str | Path | None = None) -> list[dict]:
    """Evaluate one configuration (the ``eval`` config's fields as a dict); writes results.json/csv to out_dir.

    Every setting is checked first (:func:`check_config`). The sweep contains the unmerged model (r=0) as
    reference, then ``cfg['tome']``'s setting; ``reference_cache`` lets the jobs of a multirun share the reference.
    Runs in one process or under torchrun (see :func:`tokenmerge.experiments.evaluation_job.run_evaluation_job`).
    """
    setting = check_config(cfg)
    data = cfg["data"]
    root = data["root"] or embedded_val_root()

    def build_loader(model):
        return root, build_eval_loader(
            root, model, batch_size=data["batch_size"], workers=data["workers"], max_samples=data["max_samples"]
        )

    return run_evaluation_job(
        cfg, out_dir, setting, lambda: load_model(**cfg["model"]), build_loader, sweep, reference_cache
    )
