"""The image models: any timm vision transformer by name, or the embedded photo-object ViT (``"embedded"``)."""

from __future__ import annotations

import timm
from torch import nn

from .embedded import create_embedded_model
from .photo_objects import PHOTOS


def create_model(name: str = "embedded", *, num_classes: int | None = None, **kwargs) -> nn.Module:
    """A randomly initialised image model; weights come from :func:`~tokenmerge.image.load_checkpoint`,
    :func:`~tokenmerge.image.load_pretrained_encoder` or :func:`~tokenmerge.image.load_model`.

    Args:
        name: ``"embedded"`` (the photo-object ViT's architecture) or a timm model name (never downloads).
        num_classes: outputs of the head (default: the embedded task's 21 classes, or timm's default).
        **kwargs: passed to the model (e.g. ``drop_path_rate``, ``global_pool``).
    """
    if name == "embedded":
        return create_embedded_model(num_classes or len(PHOTOS), **kwargs)
    if not timm.is_model(name):
        raise ValueError(
            f"Unknown image model {name!r}: choose 'embedded' or a timm model name "
            "(python -c \"import timm; print(timm.list_models('vit*'))\" lists them)."
        )
    extra = {} if num_classes is None else {"num_classes": num_classes}
    return timm.create_model(name, pretrained=False, **extra, **kwargs)
