"""tokenmerge.image: Token Merging for timm vision transformers.

Bolya et al., "Token Merging: Your ViT But Faster", ICLR 2023 (arXiv 2210.09461).
"""

from tokenmerge.core import ToMeConfig, ToMeHandle

from .patch import TimmViTAdapter, apply_patch, merged_source

__all__ = ["TimmViTAdapter", "ToMeConfig", "ToMeHandle", "apply_patch", "merged_source"]
