"""Model loading for audio experiments: an embedded model, or an AudioMAE configuration with a checkpoint from disk."""

from __future__ import annotations

from .checkpoint import load_checkpoint
from .embedded import WEIGHTS, WEIGHTS_TOME, load_embedded_model
from .model import CONFIGS, SpectrogramViT, create_model

EMBEDDED = {"embedded": WEIGHTS, "embedded_tome": WEIGHTS_TOME}


def load_model(
    name: str = "embedded",
    *,
    checkpoint: str | None = None,
    num_classes: int | None = None,
    target_length: int | None = None,
    global_pool: bool = True,
) -> SpectrogramViT:
    """An audio model in eval mode.

    Args:
        name: "embedded" (trained without merging), "embedded_tome" (fine-tuned with merging), or one of
            :data:`tokenmerge.audio.CONFIGS`.
        checkpoint: an AudioMAE .pth or our .safetensors; None: the embedded weights, or random weights.
        num_classes, target_length: override the named configuration (they must match the checkpoint).
        global_pool: AudioMAE's mean-pooled head (its fine-tuned checkpoints) or the class token.
    """
    if name in EMBEDDED:
        return load_embedded_model(checkpoint or EMBEDDED[name])[0]
    if name not in CONFIGS:
        raise ValueError(f"Unknown audio model {name!r}; choose one of {sorted(EMBEDDED)} or {sorted(CONFIGS)}.")
    sizes = dict(num_classes=num_classes, target_length=target_length)
    model = create_model(name, global_pool=global_pool, **{k: v for k, v in sizes.items() if v is not None})
    if checkpoint:
        load_checkpoint(model, checkpoint)
    return model.eval()
