"""The embedded default video model: a small SpatiotemporalViT trained here on the moving-objects task.

8 frames of 32 x 32 pixels, tubelets of 2 frames x 4 x 4 pixels: 4 time slices x 64 patches = 256 tokens plus
the class token. Weights ship as float16 safetensors with the architecture, class names and training
record in the metadata; ``python -m tokenmerge.video.train_embedded`` reproduces them.
"""

from __future__ import annotations

from pathlib import Path

from tokenmerge.experiments.checkpoint import EmbeddedModel, load_saved_model

from .model import EMBEDDED_ARCH, SpatiotemporalViT, create_model

WEIGHTS = Path(__file__).parent / "weights" / "clip_vit.safetensors"
ARCH = EMBEDDED_ARCH


def create_embedded_model(num_classes: int, **overrides) -> SpatiotemporalViT:
    """A randomly initialised model of the embedded architecture (no head dropout unless overridden)."""
    return create_model("embedded", num_classes=num_classes, **overrides)


def load_embedded_model(path: str | Path = WEIGHTS) -> EmbeddedModel:
    """Load a model saved by the training script (float32, eval mode): ``.model``, ``.classes``, ``.info``."""
    return load_saved_model(
        path, lambda meta: SpatiotemporalViT(**meta["arch"], dropout=0.0), "python -m tokenmerge.video.train_embedded"
    )
