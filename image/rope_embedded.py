"""The embedded rotary-position ViT: the photo-object task of the embedded ViT, with RoPE instead of absolute positions.

A timm ``Eva`` configured as the axial RoPE ViT of Heo et al. ("Rotary Position Embedding for Vision Transformer",
ECCV 2024; timm's ``vit_small_patch16_rope_224``: ``attn_type="rope"``, ``rope_grid_indexing="xy"``,
``rope_temperature=100``, no absolute position embedding, class-token pooling) at the size of the embedded ViT
(32x32 inputs, patch 4: 64 patches + 1 class token, width 192, depth 6, 3 heads of 64). Every position the model
knows comes from the rotation inside each attention, so it is where the rule for a merged token's position
(:mod:`tokenmerge.core.positions`) matters most. ``train_rope_embedded`` makes the weights (float16 safetensors, class
names and training record in the metadata), starting from the embedded ViT's.
"""

from __future__ import annotations

from pathlib import Path

from timm.models.eva import Eva

from tokenmerge.experiments.checkpoint import EmbeddedModel, load_saved_model, save_safetensors

from .embedded import DATA_CONFIG

WEIGHTS = Path(__file__).parent / "weights" / "photo_rope_vit.safetensors"
NAME = "embedded photo-object RoPE ViT"
ARCH = dict(
    img_size=32,
    patch_size=4,
    embed_dim=192,
    depth=6,
    num_heads=3,
    mlp_ratio=4.0,
    qkv_bias=True,
    attn_type="rope",
    use_abs_pos_emb=False,
    use_rot_pos_emb=True,
    rope_grid_indexing="xy",
    rope_temperature=100.0,
    use_fc_norm=False,
    global_pool="token",
)


def create_rope_model(num_classes: int, **overrides) -> Eva:
    """A randomly initialised model of the embedded RoPE architecture, with its data config attached."""
    model = Eva(num_classes=num_classes, **{**ARCH, **overrides})
    model.pretrained_cfg = {**DATA_CONFIG, "num_classes": num_classes, "architecture": NAME}
    return model


def save_rope_model(model: Eva, classes: list[str], path: str | Path, **info) -> Path:
    """Save weights as float16 safetensors; class names, architecture and ``info`` go into the metadata."""
    return save_safetensors(model, path, classes=classes, arch=ARCH, info=info)


def load_rope_model(path: str | Path = WEIGHTS) -> EmbeddedModel:
    """Load the embedded RoPE ViT (float32, eval mode): ``.model``, ``.classes``, ``.info`` (training record)."""
    loaded = load_saved_model(path, _build_saved, "python -m tokenmerge.image.train_rope_embedded")
    loaded.model.pretrained_cfg["label_names"] = tuple(loaded.classes)
    return loaded


def _build_saved(meta: dict) -> Eva:
    return create_rope_model(len(meta["classes"]), **meta["arch"])
