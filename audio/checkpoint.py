"""Loading AudioMAE checkpoints (facebookresearch/AudioMAE) and our own safetensors into a SpectrogramViT.

AudioMAE's fine-tuned checkpoints are ``torch.save``d dicts with the state dict under ``"model"``; their keys
are timm's (``patch_embed.proj``, ``cls_token``, ``pos_embed [1, 1 + N, D]``, ``blocks.i.attn.qkv``, ...)
with ``fc_norm`` and no ``norm`` (AudioMAE deletes ``norm`` and fine-tunes with the mean-pooled head), so
they load into ``SpectrogramViT(global_pool=True)`` without renaming.
"""

from __future__ import annotations

from pathlib import Path

from tokenmerge.core.checkpoint import load_state_dict_exactly, read_state_dict

from .model import SpectrogramViT


def load_checkpoint(model: SpectrogramViT, path: str | Path) -> SpectrogramViT:
    """Load an AudioMAE fine-tuned checkpoint (.pth) or our safetensors into ``model``; returns the model.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a key is missing, unexpected or mis-shaped (all are named). A ``pos_embed`` of another
            length means another ``target_length`` (513 rows: 1024 frames; 257: 512; 65: 128); a pre-training
            checkpoint has decoder keys and no head.
    """
    return load_state_dict_exactly(model, read_state_dict(path), source=f"checkpoint {path}")
