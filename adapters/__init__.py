"""tokenmerge.adapters: model-family adapters over :mod:`tokenmerge.core`, shared by the modalities.

Each module says how one family of models embeds its input, which tokens are protected and how it pools
(a :class:`tokenmerge.core.ModelAdapter`); it imports the core and the family's own library, never a modality.
"""

from .timm_vit import TimmViTAdapter

__all__ = ["TimmViTAdapter"]
