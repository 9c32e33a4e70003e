"""tokenmerge.adapters: model-family adapters over :mod:`tokenmerge.core`, shared by the modalities and users.

Each module says how one family of models embeds its input, which tokens are protected and how it pools
(a :class:`tokenmerge.core.ModelAdapter`); it imports the core and the family's own library, never a modality.

* :class:`TimmViTAdapter`: timm ``VisionTransformer`` (images; AudioMAE).
* :class:`EvaAdapter`: timm ``Eva`` (EVA-02, rotary-position ``vit_*_rope*``): token positions merged with the tokens.
* :class:`TorchvisionViTAdapter`: torchvision's ``VisionTransformer`` (``nn.MultiheadAttention`` blocks).
* :class:`TransformerEncoderAdapter`: models built on ``nn.TransformerEncoder`` (subclass for embed and head).

Families of optional libraries live in modules of their own, imported only for their models (by
``tokenmerge.apply_patch``, or by you): ``tokenmerge.adapters.open_clip`` (OpenCLIP image towers; extra ``clip``) and
``tokenmerge.adapters.hugging_face`` (Hugging Face transformers; extra ``text``).

:func:`check_adapter` checks any adapter against its model (``tokenmerge.check_adapter``).
"""

from .check import AdapterReport, check_adapter
from .timm_eva import EvaAdapter
from .timm_vit import TimmViTAdapter
from .torchvision_vit import TORCHVISION_ENCODER_BLOCK, TorchvisionViTAdapter
from .transformer_encoder import TransformerEncoderAdapter, transformer_encoder_layout

__all__ = [
    "AdapterReport",
    "check_adapter",
    "EvaAdapter",
    "TimmViTAdapter",
    "TorchvisionViTAdapter",
    "TORCHVISION_ENCODER_BLOCK",
    "TransformerEncoderAdapter",
    "transformer_encoder_layout",
]
