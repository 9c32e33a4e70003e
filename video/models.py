"""Model loading for video experiments: the embedded model, or an MAE-ST configuration with a checkpoint from disk."""

from __future__ import annotations

from .checkpoint import load_checkpoint
from .embedded import WEIGHTS, load_embedded_model
from .model import CONFIGS, SpatiotemporalViT, create_model


def load_model(
    name: str = "embedded",
    *,
    checkpoint: str | None = None,
    num_classes: int | None = None,
    num_frames: int | None = None,
    img_size: int | None = None,
) -> SpatiotemporalViT:
    """A video model in eval mode.

    Args:
        name: "embedded" (the moving-objects model shipped here) or one of :data:`tokenmerge.video.CONFIGS`.
        checkpoint: an MAE-ST .pth or our .safetensors; None: the embedded weights, or random weights.
        num_classes, num_frames, img_size: override the named configuration (they must match the checkpoint).
    """
    if name == "embedded":
        return load_embedded_model(checkpoint or WEIGHTS)[0]
    if name not in CONFIGS:
        raise ValueError(f"Unknown video model {name!r}; choose 'embedded' or one of {sorted(CONFIGS)}.")
    sizes = dict(num_classes=num_classes, num_frames=num_frames, img_size=img_size)
    model = create_model(name, **{k: v for k, v in sizes.items() if v is not None})
    if checkpoint:
        load_checkpoint(model, checkpoint)
    return model.eval()
