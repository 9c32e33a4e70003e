"""Loading AudioMAE checkpoints (facebookresearch/AudioMAE) and our own safetensors into a SpectrogramViT.

AudioMAE's fine-tuned checkpoints are ``torch.save``d dicts with the state dict under ``"model"``; their keys
are timm's (``patch_embed.proj``, ``cls_token``, ``pos_embed [1, 1 + N, D]``, ``blocks.i.attn.qkv``, ...)
with ``fc_norm`` and no ``norm`` (AudioMAE deletes ``norm`` and fine-tunes with the mean-pooled head), so
they load into ``SpectrogramViT(global_pool=True)`` without renaming.
"""

from __future__ import annotations

from pathlib import Path

from tokenmerge.experiments.checkpoint import load_encoder, load_state_dict_exactly, read_state_dict

from .embedded import WEIGHTS, WEIGHTS_TOME, load_embedded_model
from .model import CONFIGS, SpectrogramViT, create_model


def load_checkpoint(model: SpectrogramViT, path: str | Path) -> SpectrogramViT:
    """Load an AudioMAE fine-tuned checkpoint (.pth) or our safetensors into ``model``; returns the model.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a key is missing, unexpected or mis-shaped (all are named). A ``pos_embed`` of another
            length means another ``target_length`` (513 rows: 1024 frames; 257: 512; 65: 128); a pre-training
            checkpoint has decoder keys and no head.
    """
    return load_state_dict_exactly(model, read_state_dict(path), source=f"checkpoint {path}")


def load_pretrained_encoder(model: SpectrogramViT, path: str | Path) -> list[str]:
    """Start fine-tuning from an AudioMAE *pre-training* checkpoint: load the encoder, re-initialise the head.

    The patch embedding, class token, position embeddings and every block must be in the checkpoint with the
    model's shapes; the decoder, mask token and the encoder's final ``norm`` (AudioMAE's fine-tuning replaces it by
    ``fc_norm`` on the pooled tokens) are skipped, ``fc_norm`` keeps its fresh initialisation and the head is
    drawn as AudioMAE's fine-tuning draws it (:func:`tokenmerge.experiments.checkpoint.load_encoder`).

    Returns:
        The checkpoint keys that were not loaded.

    Raises:
        ValueError: an encoder key is missing or mis-shaped (all are named).
    """
    fresh = ("head.", "fc_norm.", "norm.") if model.global_pool == "avg" else ("head.", "fc_norm.")
    source = f"pre-training checkpoint {path}"
    return load_encoder(model, read_state_dict(path), fresh, source, model.head)


EMBEDDED = {"embedded": WEIGHTS, "embedded_tome": WEIGHTS_TOME}


def load_model(
    name: str = "embedded",
    *,
    checkpoint: str | None = None,
    num_classes: int | None = None,
    target_length: int | None = None,
    global_pool: bool = True,
    embed_dim: int | None = None,
    depth: int | None = None,
    num_heads: int | None = None,
) -> SpectrogramViT:
    """An audio model in eval mode.

    Args:
        name: "embedded" (trained without merging), "embedded_tome" (fine-tuned with merging), or one of
            :data:`tokenmerge.audio.CONFIGS`.
        checkpoint: an AudioMAE .pth or our .safetensors; None: the embedded weights, or random weights.
        num_classes, target_length, embed_dim, depth, num_heads: override the named configuration (they must match
            the checkpoint).
        global_pool: AudioMAE's mean-pooled head (its fine-tuned checkpoints) or the class token.
    """
    if name in EMBEDDED:
        return load_embedded_model(checkpoint or EMBEDDED[name]).model
    if name not in CONFIGS:
        raise ValueError(f"Unknown audio model {name!r}; choose one of {sorted(EMBEDDED)} or {sorted(CONFIGS)}.")
    sizes = dict(num_classes=num_classes, target_length=target_length)
    sizes |= dict(embed_dim=embed_dim, depth=depth, num_heads=num_heads)
    model = create_model(name, global_pool=global_pool, **{k: v for k, v in sizes.items() if v is not None})
    if checkpoint:
        load_checkpoint(model, checkpoint)
    return model.eval()
