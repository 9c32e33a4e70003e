"""tokenmerge.image: Token Merging for timm vision transformers.

Bolya et al., "Token Merging: Your ViT But Faster", ICLR 2023 (arXiv 2210.09461).

``apply_patch`` makes a timm ViT merge tokens, ``load_model`` gives the embedded model or a timm model with weights
from disk (nothing downloads unless asked), ``visualize_merges`` draws which patches merged.
"""

from tokenmerge.core import ToMeConfig, ToMeHandle

from .models import load_model
from .patch import TimmViTAdapter, apply_patch, merged_source

__all__ = [
    "TimmViTAdapter",
    "ToMeConfig",
    "ToMeHandle",
    "apply_patch",
    "load_model",
    "merged_source",
    "visualize_merges",
]


def __getattr__(name: str):
    # Imported on first use, so `python -m tokenmerge.image.visualize` does not find its module already loaded.
    if name == "visualize_merges":
        from .visualize import visualize_merges

        return visualize_merges
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
