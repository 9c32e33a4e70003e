"""Loading AudioMAE checkpoints (facebookresearch/AudioMAE) and our own safetensors into a SpectrogramViT.

AudioMAE's fine-tuned checkpoints are ``torch.save``d dicts with the state dict under ``"model"``; their keys
are timm's (``patch_embed.proj``, ``cls_token``, ``pos_embed [1, 1 + N, D]``, ``blocks.i.attn.qkv``, ...)
with ``fc_norm`` and no ``norm`` (AudioMAE deletes ``norm`` and fine-tunes with the mean-pooled head), so
they load into ``SpectrogramViT(global_pool=True)`` without renaming.
"""

from __future__ import annotations

from pathlib import Path

from tokenmerge.experiments.checkpoint import load_state_dict_exactly, read_state_dict

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


#: Keys of an AudioMAE pre-training checkpoint that fine-tuning does not use (decoder, mask token, encoder norm).
PRETRAINING_ONLY = ("decoder", "mask_token", "norm.")


def load_pretrained_encoder(model: SpectrogramViT, path: str | Path) -> list[str]:
    """Start fine-tuning from an AudioMAE *pre-training* checkpoint: load the encoder, keep the new head.

    The patch embedding, class token, position embeddings and every block must be in the checkpoint with the
    model's shapes; the decoder, mask token and the encoder's final ``norm`` (AudioMAE's fine-tuning replaces it by
    ``fc_norm`` on the pooled tokens) are skipped, and ``fc_norm`` / ``head`` keep their fresh initialisation.

    Returns:
        The checkpoint keys that were not loaded.

    Raises:
        ValueError: an encoder key is missing or mis-shaped (all are named).
    """
    state = read_state_dict(path)
    own = model.state_dict()
    encoder = [
        k
        for k in own
        if not k.startswith(("head.", "fc_norm.")) and not (k.startswith("norm.") and model.global_pool == "avg")
    ]
    missing = [k for k in encoder if k not in state]
    misshaped = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in encoder
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or misshaped:
        raise ValueError(
            f"The pre-training checkpoint {path} does not fit the encoder of {type(model).__name__}: "
            f"missing {missing[:8]}, mis-shaped {misshaped[:8]}. Check the size and target_length."
        )
    model.load_state_dict({k: state[k].to(own[k].dtype) for k in encoder}, strict=False)
    return sorted(set(state) - set(encoder))
