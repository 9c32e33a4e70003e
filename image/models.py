"""Model loading for experiments: the embedded model, or any timm model with weights from disk.

Nothing downloads unless asked: timm's pretrained weights are taken from the local Hugging Face cache
(or a checkpoint path); if they are not there, the error says how to provide them.
"""

from __future__ import annotations

from pathlib import Path

import timm
from torch import nn

from .embedded import WEIGHTS, load_embedded_model

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


def load_model(
    name: str = "embedded",
    *,
    pretrained: bool = True,
    checkpoint: str | None = None,
    num_classes: int | None = None,
    allow_download: bool = False,
) -> nn.Module:
    """Create a model in eval mode.

    Args:
        name: "embedded" (the photo-object ViT shipped here) or a timm model name, optionally with a tag.
        pretrained: load pretrained weights (from ``checkpoint``, else the local hub cache).
        checkpoint: path of a .safetensors / .pth checkpoint (loaded with weights_only).
        num_classes: override the classifier size (for fine-tuned checkpoints).
        allow_download: let timm download weights that are not cached.
    """
    if name == "embedded":
        return load_embedded_model(checkpoint or WEIGHTS)[0]
    kwargs = {} if num_classes is None else {"num_classes": num_classes}
    if not pretrained:
        return timm.create_model(name, pretrained=False, **kwargs).eval()
    file = Path(checkpoint) if checkpoint else cached_pretrained_file(name)
    if file is None and not allow_download:
        raise FileNotFoundError(
            f"Pretrained weights for {name!r} are not in the local Hugging Face cache. Pass model.checkpoint="
            "/path/to/weights.safetensors, set model.allow_download=true, or model.pretrained=false for random weights."
        )
    if file is not None and not file.is_file():
        raise FileNotFoundError(f"Checkpoint {file} does not exist.")
    overlay = {"file": str(file)} if file is not None else {}
    if num_classes is not None:
        overlay["num_classes"] = num_classes  # keep the checkpoint's own classifier instead of dropping it
    return timm.create_model(name, pretrained=True, pretrained_cfg_overlay=overlay or None, **kwargs).eval()
