"""Audio evaluation experiments as plain functions (the Hydra entry point wraps these)."""

from __future__ import annotations

from pathlib import Path

from tokenmerge.experiments.cli import SettingError
from tokenmerge.experiments.data import cache_dir
from tokenmerge.experiments.evaluation import Setting
from tokenmerge.experiments.evaluation_job import run_evaluation_job
from tokenmerge.experiments.training_job import model_size
from tokenmerge.experiments.validation import (
    DTYPES,
    check_choice,
    check_count,
    check_index_classes,
    check_model_choice,
    check_run,
)

from .checkpoint import EMBEDDED, load_model
from .data import build_audio_loader, is_multilabel, load_index
from .evaluate import sweep
from .features import PRESETS, FbankPreset
from .model import CONFIGS, EMBEDDED_ARCH
from .spoken_words import write_audio_dataset

__all__ = ["DTYPES", "check_config", "check_features_fit_model", "embedded_val_index", "run_evaluation"]

#: The named AudioMAE configurations' input without ``model.target_length``: SpectrogramViT's defaults.
DEFAULT_TARGET_LENGTH, DEFAULT_MEL_BINS = 1024, 128


def embedded_val_index(per_class: int = 50, seed: int = 0) -> Path:
    """The embedded evaluation set (spoken words of the validation voices as WAV + val.csv), made on first use."""
    root = write_audio_dataset(cache_dir() / f"spoken_words_val_{per_class}_{seed}", "val", per_class, seed)
    return root / "val.csv"


def check_config(cfg: dict) -> Setting:
    """Check every setting of an audio evaluation config before a model is built or a file is read: the shared
    settings, the feature preset, the model (name, checkpoint, size) and the index (its classes against the model's).

    Returns the run's setting; raises :class:`~tokenmerge.experiments.cli.UserError` with one line on what to fix.
    """
    setting = check_run(cfg)
    data, model = cfg["data"], cfg["model"]
    check_choice(data.get("preset"), sorted(PRESETS), "data.preset")
    check_count(model.get("target_length"), "model.target_length", optional=True)
    num_classes = check_model_choice(model, EMBEDDED, CONFIGS, "audio", "AudioMAE", 527)
    if model["name"] in CONFIGS:
        model_size(model, CONFIGS[model["name"]])
    for key in ("root", "classes"):
        if data.get(key) == "???":
            raise SettingError(f"data.{key} is required for this dataset: pass data.{key}=/path/to/it.")
    check_features_fit_model(PRESETS[data["preset"]], model)
    if data.get("root") is None:
        return setting
    check_index_classes(data, load_index, num_classes, model["name"])
    return setting


def check_features_fit_model(preset: FbankPreset, model: dict) -> None:
    """The features the preset makes (``target_length`` frames x ``num_mel_bins``) must be the model's input grid
    (``model.target_length``, or its architecture's); checked before an audio file is read."""
    if model["name"] in EMBEDDED:
        frames, bins = EMBEDDED_ARCH["target_length"], EMBEDDED_ARCH["num_mel_bins"]
    else:
        frames, bins = model.get("target_length") or DEFAULT_TARGET_LENGTH, DEFAULT_MEL_BINS
    if (preset.target_length, preset.num_mel_bins) == (frames, bins):
        return
    fitting = sorted(name for name, p in PRESETS.items() if (p.target_length, p.num_mel_bins) == (frames, bins))
    instead = f"choose data.preset={' or '.join(fitting)}" if fitting else "choose a preset of that size"
    raise SettingError(
        f"data.preset={preset.name} makes {preset.target_length} frames x {preset.num_mel_bins} mel bins but model "
        f"{model['name']} takes {frames} x {bins}: {instead}, or a model of the data's length "
        f"(model.target_length={preset.target_length}, which a checkpoint must match)."
    )


def run_evaluation(cfg: dict, out_dir: str | Path, reference_cache: str | Path | None = None) -> list[dict]:
    """Evaluate one configuration (the ``eval`` config's fields as a dict); writes results.json/csv to out_dir.

    Every setting is checked first (:func:`check_config`). The sweep contains the unmerged model (r=0) as
    reference, then ``cfg['tome']``'s setting; ``reference_cache`` lets the jobs of a multirun share the reference.
    Multi-label indexes (AudioSet) are scored by mAP. Runs in one process or under torchrun (see
    :func:`tokenmerge.experiments.evaluation_job.run_evaluation_job`).
    """
    setting = check_config(cfg)
    data = cfg["data"]
    source = data["root"] or embedded_val_index(per_class=data["per_class"] or 50)

    def build_loader(model):
        return source, build_audio_loader(
            source,
            preset=data["preset"],
            classes=data["classes"],
            batch_size=data["batch_size"],
            workers=data["workers"],
            max_samples=data["max_samples"],
        )

    def sweep_by_label_kind(model, loader, settings, **options):
        return sweep(model, loader, settings, multilabel=is_multilabel(loader), **options)

    return run_evaluation_job(
        cfg, out_dir, setting, lambda: load_model(**cfg["model"]), build_loader, sweep_by_label_kind, reference_cache
    )
