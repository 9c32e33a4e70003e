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

from tokenmerge.experiments.checkpoint import load_state_dict_exactly, read_state_dict

from .model import SpatiotemporalViT

_SEPARATE_QKV = re.compile(r"^(blocks\.\d+\.attn)\.q\.(weight|bias)$")


def fuse_separate_qkv(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """MAE-ST attention keys ``blocks.i.attn.{q,k,v}.{weight,bias}`` -> ``blocks.i.attn.qkv.{weight,bias}``.

    Other keys pass through. A block with q but without k or v is left as it is (and reported by the loader).
    """
    out = dict(state)
    for key in list(state):
        match = _SEPARATE_QKV.match(key)
        if not match:
            continue
        prefix, kind = match.groups()
        parts = [f"{prefix}.{name}.{kind}" for name in ("q", "k", "v")]
        if all(p in state for p in parts):
            out[f"{prefix}.qkv.{kind}"] = torch.cat([state[p] for p in parts], dim=0)
            for p in parts:
                del out[p]
    return out


def load_checkpoint(model: SpatiotemporalViT, path: str | Path) -> SpatiotemporalViT:
    """Load an MAE-ST checkpoint (.pth, its own layout) or our safetensors into ``model``; returns the model.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a key is missing, unexpected or mis-shaped (all such keys are named), e.g. a pre-training
            checkpoint (decoder keys) or a model built with other frames, sizes or classes.
    """
    state = fuse_separate_qkv(read_state_dict(path))
    return load_state_dict_exactly(model, state, source=f"checkpoint {path}")
