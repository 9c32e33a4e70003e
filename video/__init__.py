"""tokenmerge.video: Token Merging for spatiotemporal ViTs (MAE-ST layout), across space and time.

Bolya et al., "Token Merging: Your ViT But Faster", ICLR 2023 (arXiv 2210.09461), Sec. 5 (video);
Feichtenhofer et al., "Masked Autoencoders As Spatiotemporal Learners", NeurIPS 2022 (the model layout).

The same API as every modality (see :mod:`tokenmerge.image`): ``create_model``, ``load_checkpoint``,
``load_pretrained_encoder``, ``load_embedded_model``, ``load_model``, ``apply_patch``, ``visualize_merges``.
"""

from tokenmerge.core import ToMeConfig, ToMeHandle

from .checkpoint import load_checkpoint, load_model, load_pretrained_encoder
from .embedded import load_embedded_model
from .model import CONFIGS, SpatiotemporalViT, TubeletEmbed, create_model
from .patch import SpatiotemporalAdapter, apply_patch

__all__ = [
    "CONFIGS",
    "SpatiotemporalAdapter",
    "SpatiotemporalViT",
    "ToMeConfig",
    "ToMeHandle",
    "TubeletEmbed",
    "apply_patch",
    "create_model",
    "load_checkpoint",
    "load_embedded_model",
    "load_model",
    "load_pretrained_encoder",
    "visualize_merges",
]


def __getattr__(name: str):
    # Imported on first use, so `python -m tokenmerge.video.visualize` does not find its module already loaded.
    if name == "visualize_merges":
        from .visualize import visualize_merges

        return visualize_merges
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
