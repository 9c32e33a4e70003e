"""tokenmerge.image: Token Merging for timm vision transformers.

Bolya et al., "Token Merging: Your ViT But Faster", ICLR 2023 (arXiv 2210.09461).
"""

from .patch import ToMeConfig, ToMeHandle, apply_patch, merged_source

__all__ = ["ToMeConfig", "ToMeHandle", "apply_patch", "merged_source"]
