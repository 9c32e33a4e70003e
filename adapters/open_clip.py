"""Token Merging in OpenCLIP image towers (``open_clip``, which also builds the OpenAI CLIP architectures).

``tokenmerge.apply_patch(model.visual, r=...)`` patches a CLIP model's ``open_clip.transformer.VisionTransformer``:
``model.encode_image(images)`` and ``model(images, texts)`` then merge in the image tower, because they call
``model.visual``; the text side is unchanged. A whole ``CLIP`` / ``CustomTextCLIP`` / ``CoCa`` model is refused with
that hint: the patch replaces the forward of the model it is given, and a CLIP model's forward takes images and texts.

The tower embeds with ``conv1``, prepends ``class_embedding`` (protected), adds ``positional_embedding``, then
``patch_dropout`` and ``ln_pre``; its blocks (``transformer.resblocks``) are ``ResidualAttentionBlock``: pre-norm,
``torch.nn.MultiheadAttention``, optional LayerScale (``ls_init_value``). After the blocks it does what the tower's
own ``_pool`` does: ``ln_post`` on every token (or on the pooled features with ``final_ln_after_pool``), the class
token (``pool_type='tok'``) or the mean of the patch tokens weighted by their sizes (``'avg'``), then ``@ proj``.

Refused, each with its reason: an attentional pooler (``attn_pool``, CoCa), ``pool_type='none'``, open_clip's custom
blocks (``block_type='custom'``), the text towers (causal), a timm trunk (``TimmModel``: patch its ``trunk``).
"""

from __future__ import annotations

import torch
from open_clip.timm_model import TimmModel
from open_clip.transformer import ResidualAttentionBlock, TextTransformer, VisionTransformer
from torch import Tensor, nn

from tokenmerge.core import BlockLayout, ModelAdapter, TokenState, size_weighted_mean
from tokenmerge.core.unsupported import CAUSAL

#: The families :func:`adapter_for` patches (listed by ``tokenmerge.supported_families()``).
FAMILIES = (
    "open_clip VisionTransformer (OpenCLIP / OpenAI CLIP image towers, pass model.visual: class-token or average "
    "pooling, LayerScale)",
)

#: open_clip's ``ResidualAttentionBlock``: pre-norm, ``nn.MultiheadAttention`` (batch first), optional LayerScale.
OPEN_CLIP_BLOCK = BlockLayout(
    norm_first=True,
    attn_norm="ln_1",
    mlp_norm="ln_2",
    num_heads="attn.num_heads",
    multihead_attention="attn",
    attn_out=("attn.out_proj",),
    attn_residual=("ls_1",),
    mlp=("mlp",),
    mlp_residual=("ls_2",),
)


class OpenCLIPVisionAdapter(ModelAdapter):
    """``open_clip.transformer.VisionTransformer``: class token protected, class-token or size-weighted average pool.

    The patched tower returns what the unpatched one returns: image features [B, output_dim] (``proj`` applied), or
    with ``output_tokens`` the pair (features, tokens [B, N' - 1, width]) where the tokens are the merged patch tokens
    (after ``ln_post`` unless ``final_ln_after_pool``; not projected), fewer than the N - 1 patches and in merge order,
    not grid order: ``handle.forward_tokens(images)`` gives their sizes (``state.size[:, 1:]``).
    """

    layout = OPEN_CLIP_BLOCK
    required_parts = (
        "conv1",
        "class_embedding",
        "positional_embedding",
        "patch_dropout",
        "ln_pre",
        "transformer",
        "ln_post",
        "proj",
    )
    supports = "OpenCLIPVisionAdapter supports open_clip's VisionTransformer (a CLIP model's .visual)"

    def check(self, model: nn.Module) -> None:
        """Refuse an attentional pooler, ``pool_type='none'`` and custom blocks with their reason, then check the
        parts and blocks (:meth:`ModelAdapter.check`)."""
        if getattr(model, "attn_pool", None) is not None:
            raise TypeError(
                f"{type(model).__name__} with an attentional pooler (attn_pool, as in CoCa) is not supported: its "
                "pooling cross-attention reads every token, so merged tokens would need proportional attention there "
                "too. Use a tower with pool_type 'tok' or 'avg'."
            )
        pool = getattr(model, "pool_type", None)
        if pool not in ("tok", "avg"):
            raise TypeError(
                f"{type(model).__name__} with pool_type={pool!r} is not supported: it returns every token as its "
                "features, and merging returns fewer, so the output would change shape. Supported: 'tok' (class "
                "token) and 'avg' (pooled by token size)."
            )
        custom = [
            f"transformer.resblocks[{i}] ({type(block).__name__})"
            for i, block in enumerate(self.blocks(model))
            if not isinstance(block, ResidualAttentionBlock)
        ]
        if custom:
            raise TypeError(
                f"{custom[0]} is not open_clip's default ResidualAttentionBlock (torch.nn.MultiheadAttention): custom "
                "blocks (block_type='custom', chosen by qk_norm, scaled_cosine_attn, scale_heads, scale_attn_inner, "
                "scale_attn or scale_fc) keep a bare in_proj_weight that a BlockLayout cannot name, and scaled cosine "
                "attention and per-head scales have no place in the merged attention. No pretrained OpenCLIP config "
                "uses them; build the tower with the default blocks."
            )
        super().check(model)

    def blocks(self, model: nn.Module):
        return model.transformer.resblocks

    def protected(self, model: nn.Module) -> int:
        return 1

    def embed(self, model: nn.Module, inputs: Tensor) -> Tensor:
        """Images [B, 3, H, W] -> [B, 1 + patches, width] (class token first, positions added, patch dropout and
        ``ln_pre`` applied), as the tower's ``_embeds``."""
        x = model.conv1(inputs).flatten(2).transpose(1, 2)
        cls = model.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + model.positional_embedding.to(x.dtype)
        return model.ln_pre(model.patch_dropout(x))

    def finish(self, model: nn.Module, x: Tensor) -> Tensor:
        """[B, N', width] -> the same after ``ln_post`` (left for the pooled features with ``final_ln_after_pool``)."""
        return x if model.final_ln_after_pool else model.ln_post(x)

    def head_needs_sizes(self, model: nn.Module) -> bool:
        return model.pool_type == "avg"

    def head(self, model: nn.Module, x: Tensor, state: TokenState, pre_logits: bool = False):
        """Final tokens [B, N', width] -> image features [B, output_dim]: the class token, or the patch tokens'
        mean weighted by ``state.size``; ``ln_post`` here with ``final_ln_after_pool``; then ``@ proj``.

        Returns:
            the features; with ``pre_logits`` the pooled features [B, width] before ``proj``; with the tower's
            ``output_tokens`` (and not ``pre_logits``) the pair (features, merged patch tokens [B, N' - 1, width]).
        """
        tokens = x[:, 1:]
        if model.pool_type == "avg":
            pooled = size_weighted_mean(tokens, None if state.size is None else state.size[:, 1:])
        else:
            pooled = x[:, 0]
        if model.final_ln_after_pool:
            pooled = model.ln_post(pooled)
        if pre_logits:
            return pooled
        if model.proj is not None:
            pooled = pooled @ model.proj
        return (pooled, tokens) if model.output_tokens else pooled


def _text_reason(model: TextTransformer) -> str:
    """Why an open_clip ``TextTransformer`` cannot merge tokens."""
    if model.attn_mask is not None:
        return f"attn_mask (a causal mask, given to every block) found: {CAUSAL}"
    return (
        f"its attention is bidirectional (no_causal_mask), but it pools the text at one token chosen by its position "
        f"(pool_type={model.pool_type!r}: the end-of-text or a fixed token) and masks padding by position; merging "
        "moves and mixes tokens, so that token would no longer be the one the model reads."
    )


def adapter_for(model: nn.Module) -> ModelAdapter:
    """The adapter for an open_clip model (``tokenmerge.apply_patch`` calls it for classes from ``open_clip.``).

    Raises:
        TypeError: for a whole CLIP model (pass ``model.visual``), a text tower (causal), a timm trunk (pass
            ``model.visual.trunk``), or another open_clip class; the message says why and what to pass instead.
    """
    name = type(model).__name__
    if isinstance(model, VisionTransformer):
        return OpenCLIPVisionAdapter()
    if isinstance(model, TextTransformer):
        raise TypeError(
            f"open_clip's {name} (a text tower) cannot merge tokens: {_text_reason(model)} Merge in the image tower "
            "instead: tokenmerge.apply_patch(model.visual, r=...)."
        )
    if isinstance(model, TimmModel):
        raise TypeError(
            f"open_clip's {name} wraps a timm model (trunk) and a projection head; patch the trunk with timm's "
            "adapter: tokenmerge.apply_patch(model.visual.trunk, r=...) for a timm VisionTransformer trunk. The "
            "TimmModel (and encode_image) then merge, since its forward calls trunk(x) and then head."
        )
    if isinstance(getattr(model, "visual", None), nn.Module):
        raise TypeError(
            f"tokenmerge.apply_patch patches one tower, and {name}.forward takes images and texts: pass the image "
            "tower, tokenmerge.apply_patch(model.visual, r=...). model.encode_image and model(images, texts) then "
            "merge in the image tower; encode_text is unchanged (text towers do not merge)."
        )
    raise TypeError(
        f"tokenmerge does not know open_clip's {type(model).__module__}.{name}. Supported: {'; '.join(FAMILIES)}. "
        "Text towers are causal and convolutional towers (ModifiedResNet) have no token sequence to merge."
    )
