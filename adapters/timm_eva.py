"""Token Merging for timm's ``Eva`` models: EVA-02 and the rotary-position ViTs (``vit_*_rope*``).

These rotate every query and key by its token's grid position (RoPE) inside every attention. The adapter gives each
token its coordinates in the model's own rotary units (``token_positions``), the core merges them with the tokens
(:mod:`tokenmerge.core.positions`: ``position_rule`` "destination" or "mean"), and every block rotates by the merged
positions with the model's own embedding (:class:`EvaRotary`): timm's ``RotaryEmbeddingCat`` (EVA-02, the axial
``*_rope`` ViTs; frequencies ``rope.bands``) or ``RotaryEmbeddingMixed`` (``*_rope_mixed``: learnt frequencies per
block and head), evaluated at any coordinates because their angles are linear in them; prefix tokens are not rotated,
as in timm. Also supported: absolute position embeddings added once (EVA-02), class and register tokens, fused qkv
with separate q/v biases, SwiGLU MLPs, sub-LayerNorms (``scale_attn_inner``, ``scale_mlp``), LayerScale
``gamma_1``/``gamma_2``, q/k-norm, gated attention, class-token or (size-weighted) average pooling. Refused with the
reason: ``EvaBlockPostNorm`` blocks, an attention-pooling head, grouped-query attention, patch dropout while
training, and other rotary designs (DINOv3's, MRoPE). Coordinate augmentation of training-time RoPE is not applied
while patched (positions are the plain grid).

Private timm helpers used (checked by the r=0 tests against timm's own forward): ``_build_grid`` and
``_rope_layout`` of ``timm.layers.pos_embed_sincos``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from timm.layers.pos_embed_sincos import (
    RotaryEmbeddingCat,
    RotaryEmbeddingMixed,
    _build_grid,
    _rope_layout,
    apply_rot_embed_cat,
    get_mixed_freqs,
    get_mixed_grid,
)
from timm.models.eva import Eva, EvaBlock
from torch import Tensor, nn

from tokenmerge.core import BlockLayout
from tokenmerge.core.merge import exact_dtype

from .timm_vit import TimmViTAdapter

ROPE_TYPES = (RotaryEmbeddingCat, RotaryEmbeddingMixed)
_PATCH_DROPOUT = (
    "patch dropout drops tokens with their rotary positions, which merging does not follow; train with "
    "patch_drop_rate=0 or run the patched model in eval mode."
)


def eva_block_layout(attention: nn.Module) -> BlockLayout:
    """The :class:`~tokenmerge.core.BlockLayout` of an ``EvaBlock`` whose attention is ``attention`` (timm's
    ``EvaAttention`` or ``AttentionRope``, fused or separate projections)."""
    fused = getattr(attention, "qkv", None) is not None
    separate_bias = fused and hasattr(attention, "q_bias")  # EvaAttention: bias-free qkv, q/k/v biases apart
    projections = dict(qkv="attn.qkv") if fused else dict(query="attn.q_proj", key="attn.k_proj", value="attn.v_proj")
    return BlockLayout(
        norm_first=True,
        attn_norm="norm1",
        mlp_norm="norm2",
        num_heads="attn.num_heads",
        **projections,
        qkv_bias=("attn.q_bias", "attn.k_bias", "attn.v_bias") if separate_bias else (),
        q_norm="attn.q_norm",
        k_norm="attn.k_norm",
        heads_norm="attn.norm",
        gate="attn.gate",
        attn_dropout="attn.attn_drop",
        attn_out=("attn.proj", "attn.proj_drop"),
        attn_gamma="gamma_1",
        attn_residual=("drop_path1",),
        mlp=("mlp",),
        mlp_gamma="gamma_2",
        mlp_residual=("drop_path2",),
    )


@dataclass(frozen=True, eq=False)
class EvaRotary:
    """One block's rotary embedding at any token positions (a :class:`tokenmerge.core.positions.Rotary`).

    Attributes:
        rope: the model's ``RotaryEmbeddingCat`` or ``RotaryEmbeddingMixed``.
        index: the block's index (mixed RoPE learns frequencies per block).
        prefix: leading tokens that are not rotated (class and register tokens).
        half: timm's ``rotate_half`` layout of the block's attention.
    """

    rope: nn.Module
    index: int
    prefix: int
    half: bool

    def embedding(self, positions: Tensor) -> Tensor:
        """positions [B, N, 2] (rotary units) -> sin/cos embedding [B, 1 or H, N, 2*D], computed in float32 as timm
        computes its own."""
        positions = positions.float()
        if isinstance(self.rope, RotaryEmbeddingMixed):
            freqs = self.rope.freqs[:, self.index]  # [2, H, D/2]
            return get_mixed_freqs(freqs, positions[:, None, :, 0], positions[:, None, :, 1])
        angles = (positions[..., None] * self.rope.bands.float()).flatten(-2)  # [B, N, 2 * bands]
        sin, cos = (_rope_layout(f(angles), self.rope.rotate_half) for f in (torch.sin, torch.cos))
        return torch.cat([sin, cos], -1)[:, None]

    def __call__(self, q: Tensor, k: Tensor, positions: Tensor) -> tuple[Tensor, Tensor]:
        """q, k [B, H, N, D], positions [B, N, 2] -> q, k rotated (prefix tokens as they are)."""
        p = self.prefix
        embedding = self.embedding(positions[:, p:])

        def rotate(t: Tensor) -> Tensor:
            rotated = apply_rot_embed_cat(t[:, :, p:], embedding.to(t.dtype), half=self.half)
            return torch.cat([t[:, :, :p], rotated], dim=2)

        return rotate(q), rotate(k)


class EvaAdapter(TimmViTAdapter):
    """timm ``Eva`` (EVA-02, ``vit_*_rope*``): rotary positions carried and merged with the tokens; protected tokens,
    the attention-pooling refusal and the size-weighted head are the timm ViT adapter's."""

    required_parts = (*TimmViTAdapter.required_parts, "rope")
    supports = "EvaAdapter supports timm's Eva models (EVA-02, vit_*_rope*)"
    parts_hint = ""
    model_class = Eva
    rotary_positions = True

    def check(self, model: nn.Module) -> None:
        problem = _unsupported_eva(model)
        if problem:
            raise TypeError(f"{type(model).__name__} cannot merge tokens here: {problem}")
        self.layout = eva_block_layout(model.blocks[0].attn)
        super().check(model)

    def embed(self, model: nn.Module, inputs: Tensor) -> Tensor:
        """Images [B, 3, H, W] -> [B, prefix + patches, C] (absolute position embeddings added where the model has
        them; the rotary embedding is applied in every block)."""
        if model.training and model.patch_drop is not None:
            raise ValueError(_PATCH_DROPOUT)
        x, _ = model._pos_embed(model.patch_embed(inputs))
        return model.norm_pre(x)

    def token_positions(self, model: nn.Module, x: Tensor) -> Tensor | None:
        """[B, N, 2] grid coordinates in the rotary embedding's units (zeros for the prefix tokens), in float32
        (float64 for float64 tokens)."""
        rope = model.rope
        if rope is None:
            return None
        grid = _grid_shape(model, x.shape[1] - self.protected(model))
        if isinstance(rope, RotaryEmbeddingMixed):
            coords = torch.stack(get_mixed_grid(grid, grid_indexing=rope.grid_indexing, device=x.device), -1)
        else:
            coords = _build_grid(
                grid,
                grid_type=rope.grid_type,
                ref_feat_shape=rope.ref_feat_shape,
                grid_offset=rope.grid_offset,
                grid_indexing=rope.grid_indexing,
                normalize_coords=rope.normalize_coords,
                device=x.device,
            ).reshape(-1, len(grid))
        coords = torch.cat([coords.new_zeros(self.protected(model), coords.shape[-1]), coords])
        return coords.to(exact_dtype(x.dtype)).expand(x.shape[0], -1, -1)

    def rotary(self, model: nn.Module, index: int) -> EvaRotary | None:
        if model.rope is None:
            return None
        attention = model.blocks[index].attn
        return EvaRotary(model.rope, index, int(attention.num_prefix_tokens), bool(attention.rotate_half))


def _grid_shape(model: nn.Module, num_patches: int) -> list[int]:
    """The patch grid (H, W) of ``num_patches`` patches: the model's own, or a square one for dynamic sizes."""
    grid = list(model.patch_embed.grid_size)
    if grid[0] * grid[1] == num_patches:
        return grid
    side = round(num_patches**0.5)
    if side * side != num_patches:
        raise ValueError(
            f"{num_patches} patches do not fill the model's {grid[0]}x{grid[1]} grid or a square one: merging in a "
            "dynamic-size RoPE model needs square inputs."
        )
    return [side, side]


def _unsupported_eva(model: nn.Module) -> str | None:
    """Why an ``Eva`` model's design does not fit :class:`EvaAdapter`, or None."""
    rope = getattr(model, "rope", None)
    if rope is not None and not isinstance(rope, ROPE_TYPES):
        return (
            f"its rotary embedding is timm's {type(rope).__name__}; merging carries positions for RotaryEmbeddingCat "
            "(EVA-02, axial *_rope ViTs) and RotaryEmbeddingMixed (*_rope_mixed) only."
        )
    if getattr(model, "patch_drop", None) is not None and model.training:
        return _PATCH_DROPOUT
    for i, block in enumerate(model.blocks):
        if type(block) is not EvaBlock:
            return (
                f"blocks[{i}] is a {type(block).__name__}: its norm sits after the attention (x + norm(attn(x))), "
                "a layout tokenmerge does not drive; EvaBlock (pre-norm) models are supported."
            )
        if getattr(block.attn, "num_kv_groups", 1) > 1:
            return f"blocks[{i}] uses grouped-query attention (fewer key/value heads), which merging does not support."
    return None
