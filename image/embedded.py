"""The embedded default image model: a small timm ViT trained here on photo objects (see ``photo_objects``).

It is an ordinary timm ``VisionTransformer`` (class token, patch 4 on 32x32 inputs: 64 patches + 1 class
token), so everything that works on it works on any timm ViT. Weights ship as float16 safetensors with
the class names and data config in the file's metadata; ``train_embedded`` reproduces them.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, safe_open, save_file
from timm.models.vision_transformer import VisionTransformer

WEIGHTS = Path(__file__).parent / "weights" / "photo_vit.safetensors"
ARCH = dict(img_size=32, patch_size=4, embed_dim=192, depth=6, num_heads=3, mlp_ratio=4.0, qkv_bias=True)
DATA_CONFIG = dict(
    input_size=(3, 32, 32), interpolation="bicubic", crop_pct=1.0, crop_mode="center", mean=(0.5,) * 3, std=(0.5,) * 3
)


def create_embedded_model(num_classes: int, **overrides) -> VisionTransformer:
    """A randomly initialised model of the embedded architecture, with its data config attached."""
    model = VisionTransformer(num_classes=num_classes, **{**ARCH, **overrides})
    model.pretrained_cfg = {**DATA_CONFIG, "num_classes": num_classes}
    return model


def save_embedded_model(model: VisionTransformer, classes: list[str], path: str | Path, **info) -> Path:
    """Save weights as float16 safetensors; class names, architecture and ``info`` go into the metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    metadata = {"classes": json.dumps(classes), "arch": json.dumps(ARCH), "info": json.dumps(info)}
    save_file(tensors, str(path), metadata=metadata)
    return path


def read_metadata(path: str | Path = WEIGHTS) -> dict:
    """The metadata of a saved embedded model: classes, arch and training info (decoded)."""
    with safe_open(str(path), framework="pt") as f:
        raw = f.metadata() or {}
    return {k: json.loads(v) for k, v in raw.items()}


def load_embedded_model(path: str | Path = WEIGHTS) -> tuple[VisionTransformer, list[str]]:
    """Load the embedded model in float32, eval mode. Returns (model, class names)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"No embedded model at {path}. Train it with `python -m tokenmerge.image.train_embedded` "
            "or pass the path of a checkpoint."
        )
    meta = read_metadata(path)
    classes = meta["classes"]
    model = create_embedded_model(len(classes), **{k: v for k, v in meta["arch"].items() if k != "num_classes"})
    state = {k: v.float() for k, v in load_file(str(path)).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"Checkpoint {path} does not fit the embedded model: missing {missing}, unexpected {unexpected}."
        )
    return model.eval(), classes
