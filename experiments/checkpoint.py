"""Reading checkpoints safely and loading them strictly, with errors that name every key that does not fit.

Checkpoints are read with safetensors or ``torch.load(weights_only=True)`` (no pickled code runs). Training
scripts wrap the state dict (MAE, MAE-ST and AudioMAE save ``{"model": state_dict, ...}``, some MAE-ST files
``"model_state"``) and DistributedDataParallel prefixes keys with ``module.``; both are unwrapped here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

WRAPPER_KEYS = ("model", "model_state", "state_dict")


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
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling errors have many types; say what the file is
        raise ValueError(f"Could not read checkpoint {path} with torch.load(weights_only=True): {error}") from error
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


def load_saved_model(
    path: str | Path, build: Callable[[dict], nn.Module], train_command: str
) -> tuple[nn.Module, dict]:
    """Rebuild and load a model saved by :func:`save_safetensors` (float32, eval mode); returns (model, metadata).

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
    return model.eval(), meta
