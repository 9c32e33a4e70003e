"""The embedded default image model: a small timm ViT trained here on photo objects (see ``photo_objects``).

It is an ordinary timm ``VisionTransformer`` (class token, patch 4 on 32x32 inputs: 64 patches + 1 class
token), so everything that works on it works on any timm ViT. Weights ship as float16 safetensors with
the class names and data config in the file's metadata; ``train_embedded`` reproduces them.
"""

from __future__ import annotations

from pathlib import Path

from timm.models.vision_transformer import VisionTransformer

from tokenmerge.experiments.checkpoint import (
    EmbeddedModel,
    load_saved_model,
    read_safetensors_metadata,
    save_safetensors,
)

WEIGHTS = Path(__file__).parent / "weights" / "photo_vit.safetensors"
NAME = "embedded photo-object ViT"
ARCH = dict(img_size=32, patch_size=4, embed_dim=192, depth=6, num_heads=3, mlp_ratio=4.0, qkv_bias=True)
DATA_CONFIG = dict(
    input_size=(3, 32, 32), interpolation="bicubic", crop_pct=1.0, crop_mode="center", mean=(0.5,) * 3, std=(0.5,) * 3
)


def create_embedded_model(num_classes: int, **overrides) -> VisionTransformer:
    """A randomly initialised model of the embedded architecture, with its data config attached."""
    model = VisionTransformer(num_classes=num_classes, **{**ARCH, **overrides})
    model.pretrained_cfg = {**DATA_CONFIG, "num_classes": num_classes, "architecture": NAME}
    return model


def save_embedded_model(model: VisionTransformer, classes: list[str], path: str | Path, **info) -> Path:
    """Save weights as float16 safetensors; class names, architecture and ``info`` go into the metadata."""
    return save_safetensors(model, path, classes=classes, arch=ARCH, info=info)


def read_metadata(path: str | Path = WEIGHTS) -> dict:
    """The metadata of a saved embedded model: classes, arch and training info (decoded)."""
    return read_safetensors_metadata(path)


def load_embedded_model(path: str | Path = WEIGHTS) -> EmbeddedModel:
    """Load the embedded model (float32, eval mode): ``.model``, ``.classes``, ``.info`` (training record)."""
    loaded = load_saved_model(path, _build_saved, "python -m tokenmerge.image.train_embedded")
    loaded.model.pretrained_cfg["label_names"] = tuple(loaded.classes)  # read by pictures and reports
    return loaded


def _build_saved(meta: dict) -> VisionTransformer:
    arch = {k: v for k, v in meta["arch"].items() if k != "num_classes"}
    return create_embedded_model(len(meta["classes"]), **arch)
