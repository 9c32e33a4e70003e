"""Token Merging in models built on PyTorch's own ``nn.TransformerEncoder`` / ``nn.TransformerEncoderLayer``.

A ``TransformerEncoderLayer`` is self-attention (``self_attn``, a ``torch.nn.MultiheadAttention``) then a
feed-forward ``linear1 -> activation -> dropout -> linear2``, pre-norm (``norm_first=True``) or post-norm, with
``dropout1``/``dropout2`` on the branches; ``batch_first`` only says how the layer's own forward takes its input, and
the patched blocks work on [B, N, C] either way. PyTorch leaves embedding and head to the model, so a model says
them by subclassing :class:`TransformerEncoderAdapter` (``embed``, ``protected``, ``head``; README: "Add merging to
your own model"). The layer's fused fast path (``torch._transformer_encoder_layer_fwd``) is not used while patched.
"""

from __future__ import annotations

from operator import attrgetter

from torch import nn

from tokenmerge.core import BlockLayout, ModelAdapter


def transformer_encoder_layout(norm_first: bool) -> BlockLayout:
    """The :class:`~tokenmerge.core.BlockLayout` of ``nn.TransformerEncoderLayer`` (pre-norm if ``norm_first``)."""
    return BlockLayout(
        norm_first=norm_first,
        attn_norm="norm1",
        mlp_norm="norm2",
        num_heads="self_attn.num_heads",
        multihead_attention="self_attn",
        attn_out=("self_attn.out_proj", "dropout1"),
        mlp=("linear1", "activation", "dropout", "linear2", "dropout2"),
    )


class TransformerEncoderAdapter(ModelAdapter):
    """Base adapter for a model whose blocks are the ``layers`` of an ``nn.TransformerEncoder``.

    Subclass and give ``embed`` (input -> [B, N, C] tokens, batch first), ``protected`` and ``head``; ``finish``
    applies the encoder's final ``norm`` if it has one. The layout (pre- or post-norm) is read from the layers when
    the patch is applied.

    Args:
        encoder: attribute path of the ``nn.TransformerEncoder`` in the model (default ``"encoder"``).
    """

    def __init__(self, encoder: str = "encoder"):
        self.encoder_path = encoder

    def encoder(self, model: nn.Module) -> nn.TransformerEncoder:
        """The model's ``nn.TransformerEncoder``."""
        return attrgetter(self.encoder_path)(model)

    def check(self, model: nn.Module) -> None:
        try:
            encoder = self.encoder(model)
        except AttributeError:
            encoder = None
        if not isinstance(encoder, nn.TransformerEncoder):
            raise TypeError(
                f"TransformerEncoderAdapter needs an nn.TransformerEncoder at model.{self.encoder_path}; found "
                f"{type(encoder).__name__}. Pass encoder='path.to.it'."
            )
        styles = {getattr(layer, "norm_first", None) for layer in encoder.layers}
        if len(styles) != 1 or None in styles:
            raise TypeError("The encoder's layers must all be nn.TransformerEncoderLayer of one norm_first setting.")
        self.layout = transformer_encoder_layout(styles.pop())
        super().check(model)

    def blocks(self, model: nn.Module):
        return self.encoder(model).layers

    def finish(self, model: nn.Module, x):
        norm = self.encoder(model).norm
        return x if norm is None else norm(x)
