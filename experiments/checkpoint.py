"""Reading checkpoints safely and loading them strictly, with errors that name every key that does not fit.

Checkpoints are read with safetensors or ``torch.load(weights_only=True)`` (no pickled code runs). Training
scripts wrap the state dict (MAE, MAE-ST and AudioMAE save ``{"model": state_dict, ...}``, some MAE-ST files
``"model_state"``) and DistributedDataParallel prefixes keys with ``module.``; both are unwrapped here.
"""

from __future__ import annotations

import argparse
import json
import pickle
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

WRAPPER_KEYS = ("model", "model_state", "state_dict")


class UnreadableCheckpoint(ValueError):
    """A checkpoint file that cannot be read as tensors (not what it says it is, or pickled code)."""


#: Globals besides tensors that checkpoints written by official training scripts hold, and that are safe to unpickle:
#: the ``args`` namespace MAE-ST (facebookresearch/mae_st ``util/misc.py:351-359``) and AudioMAE
#: (facebookresearch/AudioMAE ``util/misc.py:301-309``) save beside the weights.
SAFE_GLOBALS = (argparse.Namespace,)


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """The tensors of a checkpoint file (.safetensors, or a torch.save'd dict), unwrapped, on the CPU.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file holds no state dict (the message lists its top-level keys).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint {path} does not exist; pass the path of a .safetensors or .pth file.")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        with torch.serialization.safe_globals(list(SAFE_GLOBALS)):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"GLOBAL ([\w.]+)", str(error))
        what = f"a pickled {found.group(1)}" if found else "pickled Python objects"
        raise UnreadableCheckpoint(
            f"Checkpoint {path} holds {what} besides its tensors. tokenmerge reads checkpoints with "
            "torch.load(weights_only=True), which allows tensors, containers and argparse.Namespace (the `args` the "
            "official MAE-ST and AudioMAE scripts store) and refuses other code. If you trust the file, save its "
            "state dict alone: torch.save(torch.load(path, weights_only=False)['model'], 'weights.pth')."
        ) from None
    except Exception as error:  # unpickling errors have many types; say what the file is
        raise UnreadableCheckpoint(
            f"Could not read checkpoint {path} with torch.load(weights_only=True): {error}"
        ) from error
    for key in WRAPPER_KEYS:
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        keys = list(obj)[:10] if isinstance(obj, Mapping) else type(obj).__name__
        raise ValueError(
            f"Checkpoint {path} holds no state dict of tensors (found {keys}); expected tensors at the top level "
            f"or under one of {WRAPPER_KEYS}."
        )
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k.removeprefix("module."): v for k, v in obj.items()}
    return dict(obj)


def load_state_dict_exactly(model: nn.Module, state: Mapping[str, Tensor], source: str = "checkpoint") -> nn.Module:
    """Copy ``state`` into ``model``, casting to each parameter's dtype; every key must match in name and shape.

    Raises:
        ValueError: naming the missing, unexpected and mis-shaped keys (with both shapes).
    """
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    misshaped = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if state[k].shape != own[k].shape
    ]
    if missing or unexpected or misshaped:
        problems = [
            f"{name} ({len(keys)}): {', '.join(keys[:8])}{' ...' if len(keys) > 8 else ''}"
            for name, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped))
            if keys
        ]
        raise ValueError(
            f"The {source} does not fit {type(model).__name__}: " + "; ".join(problems) + ". Check that the model "
            "configuration (size, depth, classes, frames, patch sizes, class token) matches the checkpoint."
        )
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
    return model


def load_encoder(
    model: nn.Module, state: Mapping[str, Tensor], fresh: tuple[str, ...], source: str, head: nn.Linear | None
) -> list[str]:
    """Start fine-tuning from a pre-training checkpoint: every key of ``model`` but the ``fresh`` ones from ``state``.

    The keys starting with a ``fresh`` prefix keep the model's own initialisation, and ``head``'s weight is drawn
    again from a truncated normal with std 2e-5 (bias 0), as MAE-ST's fine-tuning does (facebookresearch/mae_st
    ``main_finetune.py:447``) and AudioMAE's (facebookresearch/AudioMAE ``main_finetune_as.py:406``).

    Args:
        model: the model to fine-tune.
        state: the checkpoint's state dict, in the model's key names.
        fresh: key prefixes that are not loaded (e.g. ``("head.",)``).
        source: the checkpoint in messages (e.g. ``"pre-training checkpoint x.pth"``).
        head: the classifier to re-initialise, or None.

    Returns:
        The checkpoint keys that were not loaded (decoder, mask token, ...), sorted.

    Raises:
        ValueError: an encoder key is missing or mis-shaped (all are named).
    """
    own = model.state_dict()
    encoder = [k for k in own if not k.startswith(fresh)]
    missing = [k for k in encoder if k not in state]
    misshaped = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in encoder
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or misshaped:
        raise ValueError(
            f"The {source} does not fit the encoder of {type(model).__name__}: missing {missing[:8]}, mis-shaped "
            f"{misshaped[:8]}. Check the model size, input size and patch sizes."
        )
    model.load_state_dict({k: state[k].to(own[k].dtype) for k in encoder}, strict=False)
    if head is not None:
        with torch.no_grad():
            torch.nn.init.trunc_normal_(head.weight, std=2e-5)
            if head.bias is not None:
                head.bias.zero_()
    return sorted(set(state) - set(encoder))


def save_safetensors(model: nn.Module, path: str | Path, dtype: torch.dtype = torch.float16, **metadata) -> Path:
    """Save ``model``'s state dict as safetensors in ``dtype``; every metadata value is stored as JSON."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(path), metadata={k: json.dumps(v) for k, v in metadata.items()})
    return path


def read_safetensors_metadata(path: str | Path) -> dict:
    """The JSON-decoded metadata of a safetensors file written by :func:`save_safetensors`."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        raw = f.metadata() or {}
    return {k: json.loads(v) for k, v in raw.items()}


@dataclass(frozen=True)
class EmbeddedModel:
    """A model saved by a modality's ``train_embedded``, loaded (float32, eval mode), with what its file says.

    Attributes:
        model: the network.
        classes: class names in output order.
        info: the training record (recipe, validation accuracy and curve, seconds); empty if the file has none.
        path: the weights file it came from.
    """

    model: nn.Module
    classes: list[str]
    info: dict
    path: Path


def load_saved_model(path: str | Path, build: Callable[[dict], nn.Module], train_command: str) -> EmbeddedModel:
    """Rebuild and load a model saved by :func:`save_safetensors` with ``classes`` (and ``info``) in its metadata.

    Args:
        path: the .safetensors file.
        build: metadata -> a model of the saved architecture.
        train_command: the command that makes such a file, for the error when it is missing.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No model weights at {path}. Train them with `{train_command}` or pass a checkpoint.")
    meta = read_safetensors_metadata(path)
    model = build(meta)
    load_state_dict_exactly(model, read_state_dict(path), source=f"weights {path}")
    return EmbeddedModel(model.eval(), list(meta["classes"]), meta.get("info", {}), path)
