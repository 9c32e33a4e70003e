"""Loading MAE-ST checkpoints (facebookresearch/mae_st) and our own safetensors into a SpatiotemporalViT.

MAE-ST's fine-tuned checkpoints are ``torch.save``d dicts with the state dict under ``"model"`` (some files
``"model_state"``). Their keys are ours except for attention, where MAE-ST has separate ``attn.q``, ``attn.k``
and ``attn.v`` linears (``util/video_vit.py``) and timm's ``Block`` has one fused ``attn.qkv``: they are
concatenated in q, k, v order. ``patch_embed.proj`` (Conv3d), ``cls_token``, ``pos_embed_spatial``,
``pos_embed_temporal``, ``pos_embed_class`` (or ``pos_embed``), ``norm`` and ``head`` keep their names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from tokenmerge.experiments.checkpoint import load_encoder, load_state_dict_exactly, read_state_dict

from .embedded import WEIGHTS, load_embedded_model
from .model import CONFIGS, SpatiotemporalViT, create_model

_SEPARATE_QKV = re.compile(r"^(blocks\.\d+\.attn)\.(q|k|v)\.(weight|bias)$")


def fuse_separate_qkv(state: Mapping[str, Tensor], source: str = "checkpoint") -> dict[str, Tensor]:
    """MAE-ST attention keys ``blocks.i.attn.{q,k,v}.{weight,bias}`` -> ``blocks.i.attn.qkv.{weight,bias}``.

    Other keys pass through.

    Raises:
        ValueError: a block has some of q, k, v but not all; the message names the missing keys in the
            checkpoint's own names (``blocks.1.attn.k.weight``), not the fused key they would have made.
    """
    groups = sorted({match.group(1, 3) for match in map(_SEPARATE_QKV.match, state) if match})
    out, missing = dict(state), []
    for prefix, kind in groups:
        parts = [f"{prefix}.{name}.{kind}" for name in ("q", "k", "v")]
        missing += [p for p in parts if p not in state]
        if all(p in state for p in parts):
            out[f"{prefix}.qkv.{kind}"] = torch.cat([out.pop(p) for p in parts], dim=0)
    if missing:
        raise ValueError(
            f"The {source} has separate attention projections (MAE-ST's attn.q / attn.k / attn.v) but lacks "
            f"{', '.join(sorted(missing)[:8])}: the file is incomplete or not an MAE-ST checkpoint."
        )
    return out


def load_checkpoint(model: SpatiotemporalViT, path: str | Path) -> SpatiotemporalViT:
    """Load an MAE-ST checkpoint (.pth, its own layout) or our safetensors into ``model``; returns the model.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a key is missing, unexpected or mis-shaped (all such keys are named), e.g. a pre-training
            checkpoint (decoder keys) or a model built with other frames, sizes or classes.
    """
    state = fuse_separate_qkv(read_state_dict(path), source=f"checkpoint {path}")
    return load_state_dict_exactly(model, state, source=f"checkpoint {path}")


def load_pretrained_encoder(model: SpatiotemporalViT, path: str | Path) -> list[str]:
    """Start fine-tuning from an MAE-ST *pre-training* checkpoint (as released): load the encoder, new head.

    MAE-ST's pre-training model (facebookresearch/mae_st ``models_mae.py``) names its encoder as our model does
    (``patch_embed.proj``, ``cls_token``, ``pos_embed_spatial`` / ``pos_embed_temporal`` / ``pos_embed_class``,
    ``blocks.i`` with ``attn.q`` / ``attn.k`` / ``attn.v``, ``norm``: lines 55-103), and adds ``mask_token``
    and the ``decoder_*`` modules (lines 105-145), which are skipped. Every encoder key must be there with the
    model's shapes; the head is drawn as MAE-ST's fine-tuning draws it
    (:func:`tokenmerge.experiments.checkpoint.load_encoder`).

    Returns:
        The checkpoint keys that were not loaded (mask token, decoder).

    Raises:
        ValueError: an encoder key is missing or mis-shaped (all are named, in the checkpoint's names).
    """
    source = f"pre-training checkpoint {path}"
    state = fuse_separate_qkv(read_state_dict(path), source=source)
    return load_encoder(model, state, ("head.",), source, model.head)


def load_model(
    name: str = "embedded",
    *,
    checkpoint: str | None = None,
    num_classes: int | None = None,
    num_frames: int | None = None,
    img_size: int | None = None,
    embed_dim: int | None = None,
    depth: int | None = None,
    num_heads: int | None = None,
) -> SpatiotemporalViT:
    """A video model in eval mode.

    Args:
        name: "embedded" (the moving-objects model shipped here) or one of :data:`tokenmerge.video.CONFIGS`.
        checkpoint: an MAE-ST .pth or our .safetensors; None: the embedded weights, or random weights.
        num_classes, num_frames, img_size, embed_dim, depth, num_heads: override the named configuration (they must
            match the checkpoint).
    """
    if name == "embedded":
        return load_embedded_model(checkpoint or WEIGHTS).model
    if name not in CONFIGS:
        raise ValueError(f"Unknown video model {name!r}; choose 'embedded' or one of {sorted(CONFIGS)}.")
    sizes = dict(num_classes=num_classes, num_frames=num_frames, img_size=img_size)
    sizes |= dict(embed_dim=embed_dim, depth=depth, num_heads=num_heads)
    model = create_model(name, **{k: v for k, v in sizes.items() if v is not None})
    if checkpoint:
        load_checkpoint(model, checkpoint)
    return model.eval()
