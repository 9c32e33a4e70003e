"""tokenmerge.video: Token Merging for spatiotemporal ViTs (MAE-ST layout), across space and time.

Bolya et al., "Token Merging: Your ViT But Faster", ICLR 2023 (arXiv 2210.09461), Sec. 5 (video);
Feichtenhofer et al., "Masked Autoencoders As Spatiotemporal Learners", NeurIPS 2022 (the model layout).
"""

from tokenmerge.core import ToMeConfig, ToMeHandle

from .checkpoint import load_checkpoint
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
]
