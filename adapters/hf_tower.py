"""What every Hugging Face adapter shares: the encoder ("tower") inside the model, its blocks, and its dropout guard.

A Hugging Face task model keeps its encoder as an attribute (``ViTForImageClassification.vit``,
``CLIPVisionModelWithProjection.vision_model``); the base model is its own tower. The adapter is built with the
tower's path (``""`` for the base model), embeds and runs the tower's blocks, and its ``head`` returns the output
object the library's own forward returns for that class (see :mod:`tokenmerge.adapters.hugging_face`). Hugging Face
models have no ``forward_features`` / ``forward_head`` / intermediate-feature methods, so nothing else is patched
and ``head``'s ``pre_logits`` is never asked for.
"""

from __future__ import annotations

from operator import attrgetter

from torch import Tensor, nn

from tokenmerge.core import ModelAdapter, TokenState


class HuggingFaceAdapter(ModelAdapter):
    """Base adapter for a Hugging Face model whose encoder is the model itself or one of its attributes.

    Args:
        tower: attribute path of the encoder in the model (``"vit"``), or ``""`` when the model is the encoder.

    Attributes:
        blocks_path: path of the blocks (an ``nn.ModuleList``) from the tower (``"encoder.layer"``).
        attention_dropout_rate: path from a block of its attention-probability dropout rate when the block keeps it as
            a float rather than an ``nn.Dropout`` (then training with a rate above 0 is refused), or None.
    """

    blocks_path: str = "encoder.layer"
    attention_dropout_rate: str | None = None
    unmerged_paths = ()

    def __init__(self, tower: str = ""):
        self.tower_path = tower

    def tower(self, model: nn.Module) -> nn.Module:
        """The encoder: the model itself, or its attribute at ``tower``."""
        return attrgetter(self.tower_path)(model) if self.tower_path else model

    def is_base_model(self, model: nn.Module) -> bool:
        """Whether the model is the encoder itself (its head returns the encoder's output, not a task's)."""
        return not self.tower_path

    def blocks(self, model: nn.Module):
        return attrgetter(self.blocks_path)(self.tower(model))

    def finish(self, model: nn.Module, x: Tensor) -> Tensor:
        """Default: the tower has no final norm before its outputs (BERT-style post-norm encoders)."""
        return x

    def block_forward(self, block: nn.Module, x: Tensor, state: TokenState, r: int, **settings) -> Tensor:
        """The core's merging block; refuses training with a float attention dropout the layout cannot apply."""
        if block.training and self.attention_dropout_rate and attrgetter(self.attention_dropout_rate)(block) > 0:
            raise ValueError(
                f"{type(block).__name__} drops attention probabilities while training "
                f"({self.attention_dropout_rate}={attrgetter(self.attention_dropout_rate)(block)}), which the merging "
                "block cannot apply. Train with attention dropout 0 (the released configs' value), or call "
                "model.eval()."
            )
        return super().block_forward(block, x, state, r, **settings)
