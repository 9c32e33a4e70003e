"""The embedded default audio models: small SpectrogramViTs trained here on the spoken-words task.

Inputs are Speech Commands-style features (:data:`tokenmerge.audio.features.SPOKEN_WORDS`: 128 frames x 128 mel
bins), cut into (2, 128) patches: 64 time tokens of 20 ms of the whole spectrum each, plus the class token (the
Keyword Transformer's tokens; see :data:`tokenmerge.audio.model.EMBEDDED_ARCH`). AudioMAE's own models keep its
16 x 16 patches. Two models ship as
float16 safetensors with the architecture, class names and training record in the metadata:

* ``speech_vit.safetensors``: trained without merging;
* ``speech_vit_tome.safetensors``: the same model fine-tuned with merging on (the paper trains its audio model
  with ToMe), so it has learned to work on merged tokens.

``python -m tokenmerge.audio.train_embedded`` reproduces both.
"""

from __future__ import annotations

from pathlib import Path

from tokenmerge.experiments.checkpoint import EmbeddedModel, load_saved_model

from .model import EMBEDDED_ARCH, SpectrogramViT, create_model

WEIGHTS_DIR = Path(__file__).parent / "weights"
WEIGHTS = WEIGHTS_DIR / "speech_vit.safetensors"
WEIGHTS_TOME = WEIGHTS_DIR / "speech_vit_tome.safetensors"
ARCH = EMBEDDED_ARCH
TRAIN_COMMAND = "python -m tokenmerge.audio.train_embedded"


def create_embedded_model(num_classes: int, **overrides) -> SpectrogramViT:
    """A randomly initialised model of the embedded architecture."""
    return create_model("embedded", num_classes=num_classes, **overrides)


def load_embedded_model(path: str | Path = WEIGHTS) -> EmbeddedModel:
    """Load a model saved by the training script (float32, eval mode): ``.model``, ``.classes``, ``.info``."""
    return load_saved_model(path, lambda meta: SpectrogramViT(**meta["arch"]), TRAIN_COMMAND)
