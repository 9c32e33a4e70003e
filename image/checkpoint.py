"""Weights for image models: checkpoints from disk, pre-training checkpoints, the embedded model, timm's cache.

Nothing downloads unless asked: timm's pretrained weights are taken from the local Hugging Face cache
(or a checkpoint path); if they are not there, the error says how to provide them.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import timm
from torch import nn

from tokenmerge.experiments.checkpoint import load_encoder, load_state_dict_exactly, read_state_dict
from tokenmerge.experiments.cli import DataError, SettingError
from tokenmerge.experiments.validation import check_count, check_path

from .embedded import WEIGHTS, load_embedded_model, read_metadata

HUB_FILENAMES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")


def cached_pretrained_file(name: str) -> Path | None:
    """The locally cached weights file of timm model ``name`` (e.g. ``vit_base_patch16_224.augreg_in1k``), or None."""
    from huggingface_hub import try_to_load_from_cache

    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None or not cfg.hf_hub_id:
        return None
    for filename in HUB_FILENAMES:
        found = try_to_load_from_cache(cfg.hf_hub_id, filename)
        if isinstance(found, str):
            return Path(found)
    return None


def load_checkpoint(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a checkpoint (.safetensors, or a .pth state dict, also under ``"model"``) into ``model``; returns it.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a key is missing, unexpected or mis-shaped (all are named, in the checkpoint's names).
    """
    return load_state_dict_exactly(model, read_state_dict(path), source=f"checkpoint {path}")


def load_pretrained_encoder(model: nn.Module, path: str | Path) -> list[str]:
    """Start fine-tuning from a pre-training checkpoint (e.g. MAE's): load the encoder, re-initialise the head.

    Every key of ``model`` but ``head`` and ``fc_norm`` (the pooled head's norm, which MAE's fine-tuning adds)
    must be in the checkpoint with the model's shapes; the rest of the checkpoint (decoder, mask token, the
    encoder norm a mean-pooled model does not have) is skipped (see
    :func:`tokenmerge.experiments.checkpoint.load_encoder`). Returns the checkpoint keys that were not loaded.
    """
    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    head = head if isinstance(head, nn.Linear) else None
    return load_encoder(model, read_state_dict(path), ("head.", "fc_norm."), f"pre-training checkpoint {path}", head)


#: How the model settings are spelled in messages: Hydra overrides (run_eval) or command-line flags (visualize).
HYDRA_OPTIONS = {
    "name": "model.name",
    "checkpoint": "model.checkpoint",
    "allow_download": "model.allow_download=true",
    "random": "model.pretrained=false",
    "num_classes": "model.num_classes",
}
CLI_OPTIONS = {
    "name": "--model",
    "checkpoint": "--checkpoint",
    "allow_download": "--allow-download",
    "random": "--random-weights",
    "num_classes": "--num-classes",
}


@dataclass(frozen=True)
class ModelInfo:
    """What is known about a model before it is built: its number of outputs and, if known, its class names."""

    num_classes: int | None
    classes: list[str] | None = None


def close_timm_names(name: str, count: int = 4) -> list[str]:
    """timm model names close to ``name`` (same family first, e.g. ``vit_*`` for ``vit_nonexistent``)."""
    names = timm.list_models()
    family = [n for n in names if n.split("_")[0] == name.split("_")[0]]
    return difflib.get_close_matches(name, family, n=count, cutoff=0.5) or difflib.get_close_matches(
        name, names, n=count, cutoff=0.6
    )


def check_model(
    name: str = "embedded",
    *,
    pretrained: bool = True,
    checkpoint: str | None = None,
    num_classes: int | None = None,
    allow_download: bool = False,
    options: dict[str, str] = HYDRA_OPTIONS,
) -> ModelInfo:
    """Check a model choice without building it: the name is a timm model (or "embedded"), its weights are there.

    Args:
        name, pretrained, checkpoint, num_classes, allow_download: as in :func:`load_model`.
        options: how the settings are spelled in the messages (:data:`HYDRA_OPTIONS` or :data:`CLI_OPTIONS`).

    Returns:
        The number of classes the model predicts (None if only the checkpoint knows) and their names if known.

    Raises:
        SettingError: no or an unknown model name, an unknown pretrained tag, a bad num_classes.
        DataError: a missing checkpoint file, or pretrained weights that are neither cached nor allowed to download.
    """
    o = options
    if not isinstance(name, str) or name in ("", "???"):
        raise SettingError(
            f"{o['name']} is required: give a timm model name, e.g. {o['name']}=deit_small_patch16_224 "
            "(python -c \"import timm; print(timm.list_models('vit*'))\" lists them)."
        )
    check_count(num_classes, o["num_classes"], optional=True)
    if name == "embedded":
        if checkpoint is None and not WEIGHTS.is_file():
            raise DataError(
                f"the embedded weights {WEIGHTS} are missing: train them (python -m tokenmerge.image.train_embedded "
                f"--out {WEIGHTS}) or pass {o['checkpoint']}=/path/to/photo_vit.safetensors."
            )
        path = check_path(checkpoint or WEIGHTS, o["checkpoint"], "file", "Give an embedded model's weights file.")
        classes = list(read_metadata(path)["classes"])
        return ModelInfo(len(classes), classes)
    if not timm.is_model(name):
        close = close_timm_names(name)
        matches = f"close matches: {', '.join(close)}" if close else "no close match"
        raise SettingError(
            f"unknown timm model {name!r} ({matches}). List the names with "
            f"python -c \"import timm; print(timm.list_models('{name.split('_')[0]}*'))\"."
        )
    try:
        cfg = timm.models.get_pretrained_cfg(name)
    except RuntimeError:
        tags = timm.list_pretrained(name.split(".")[0] + ".*")
        raise SettingError(
            f"{name!r} is not a known pretrained tag: choose one of {', '.join(tags) or name.split('.')[0]}."
        ) from None
    if pretrained:
        if checkpoint:
            check_path(checkpoint, o["checkpoint"], "file", "Give the path of a .safetensors or .pth weights file.")
        elif cached_pretrained_file(name) is None and not allow_download:
            raise DataError(
                f"pretrained weights for {name!r} are not in the local Hugging Face cache: pass "
                f"{o['checkpoint']}=/path/to/weights.safetensors, {o['allow_download']} to download them, or "
                f"{o['random']} for random weights."
            )
    default = getattr(cfg, "num_classes", None) if cfg is not None else None
    return ModelInfo(num_classes if num_classes is not None else default)


def load_model(
    name: str = "embedded",
    *,
    pretrained: bool = True,
    checkpoint: str | None = None,
    num_classes: int | None = None,
    allow_download: bool = False,
) -> nn.Module:
    """Create a model in eval mode (after :func:`check_model`, so a bad choice fails before anything is built).

    Args:
        name: "embedded" (the photo-object ViT shipped here) or a timm model name, optionally with a tag.
        pretrained: load pretrained weights (from ``checkpoint``, else the local hub cache).
        checkpoint: path of a .safetensors / .pth checkpoint (loaded with weights_only).
        num_classes: override the classifier size (for fine-tuned checkpoints).
        allow_download: let timm download weights that are not cached.
    """
    check_model(
        name, pretrained=pretrained, checkpoint=checkpoint, num_classes=num_classes, allow_download=allow_download
    )
    if name == "embedded":
        return load_embedded_model(checkpoint or WEIGHTS).model
    kwargs = {} if num_classes is None else {"num_classes": num_classes}
    if not pretrained:
        return timm.create_model(name, pretrained=False, **kwargs).eval()
    file = Path(checkpoint) if checkpoint else cached_pretrained_file(name)
    overlay = {"file": str(file)} if file is not None else {}
    if num_classes is not None:
        overlay["num_classes"] = num_classes  # keep the checkpoint's own classifier instead of dropping it
    return timm.create_model(name, pretrained=True, pretrained_cfg_overlay=overlay or None, **kwargs).eval()
