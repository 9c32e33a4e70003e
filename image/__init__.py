"""tokenmerge.image: Token Merging for timm vision transformers.

Bolya et al., "Token Merging: Your ViT But Faster", ICLR 2023 (arXiv 2210.09461).

Every modality has the same API: ``create_model`` (random weights), ``load_checkpoint`` (a fine-tuned file),
``load_pretrained_encoder`` (a pre-training file, fresh head), ``load_embedded_model`` (the model shipped here),
``load_model`` (a name and optional checkpoint, in eval mode), ``apply_patch`` and ``visualize_merges``. Here the
models are timm ViTs (nothing downloads unless asked).
"""

from tokenmerge.core import ToMeConfig, ToMeHandle

from .checkpoint import load_checkpoint, load_model, load_pretrained_encoder
from .embedded import load_embedded_model
from .model import create_model
from .patch import TimmViTAdapter, apply_patch, merged_source

__all__ = [
    "TimmViTAdapter",
    "ToMeConfig",
    "ToMeHandle",
    "apply_patch",
    "create_model",
    "load_checkpoint",
    "load_embedded_model",
    "load_model",
    "load_pretrained_encoder",
    "merged_source",
    "visualize_merges",
]


def __getattr__(name: str):
    # Imported on first use, so `python -m tokenmerge.image.visualize` does not find its module already loaded.
    if name == "visualize_merges":
        from .visualize import visualize_merges

        return visualize_merges
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
