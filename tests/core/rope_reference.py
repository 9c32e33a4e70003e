"""A plain reference of Token Merging in a rotary-position (RoPE) ViT, one sample at a time, for the tests.

On top of :mod:`tests.core.paper_reference`: every token carries its grid coordinates; a merge gives the merged
token the size-weighted mean of its members' coordinates (the "mean" rule); inside every attention each query and
key after the prefix tokens is rotated by its token's coordinates: channel pair j turns by the angle theta_j, with

* axial RoPE (timm ``RotaryEmbeddingCat``): theta_j = coordinate[j // F] * band[j % F] for F bands per axis;
* mixed RoPE (timm ``RotaryEmbeddingMixed``): theta_j = x * f_x[head, j] + y * f_y[head, j], learnt per block;

pairs being (2j, 2j+1) (interleaved) or (j, j + D/2) (``rotate_half``). Angles are computed in float32, as timm
computes its own, then the rotation in the tokens' dtype. It shares no code with ``tokenmerge``; it reads the model's
parameters, its frequency bands and the coordinates of its patch grid (given by the test).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from tests.core.paper_reference import BlockParts, attention, layer_scale, merge_step


def eva_block_parts(block: nn.Module) -> BlockParts:
    """The pieces of a timm ``EvaBlock`` (fused or separate projections, q/v biases apart, LayerScale ``gamma``)."""
    attn = block.attn
    if not isinstance(attn.norm, nn.Identity) or getattr(attn, "gate", None) is not None:
        raise ValueError("The reference covers EVA attention without scale_norm or a gate.")
    if getattr(attn, "qkv", None) is not None:
        weights = attn.qkv.weight.chunk(3)
        if getattr(attn, "q_bias", None) is not None:
            biases = (attn.q_bias, attn.k_bias, attn.v_bias)
        else:
            biases = (None,) * 3 if attn.qkv.bias is None else attn.qkv.bias.chunk(3)
    else:
        projections = (attn.q_proj, attn.k_proj, attn.v_proj)
        weights, biases = [p.weight for p in projections], [p.bias for p in projections]
    return BlockParts(
        norm_first=True,
        num_heads=attn.num_heads,
        attn_norm=block.norm1,
        query_weight=weights[0],
        query_bias=biases[0],
        key_weight=weights[1],
        key_bias=biases[1],
        value_weight=weights[2],
        value_bias=biases[2],
        q_norm=None if isinstance(attn.q_norm, nn.Identity) else attn.q_norm,
        k_norm=None if isinstance(attn.k_norm, nn.Identity) else attn.k_norm,
        out_weight=attn.proj.weight,
        out_bias=attn.proj.bias,
        attn_gamma=block.gamma_1,
        mlp_norm=block.norm2,
        mlp=block.mlp,
        mlp_gamma=block.gamma_2,
    )


def angles(rope: nn.Module, coords: Tensor, block: int, heads: int) -> Tensor:
    """theta [H, N, D/2] of tokens at ``coords`` [N, 2], in float32."""
    coords = coords.float()
    if hasattr(rope, "freqs"):  # mixed: freqs [2, depth, H, D/2]
        fx, fy = rope.freqs[0, block].float(), rope.freqs[1, block].float()
        return coords[None, :, 0, None] * fx[:, None] + coords[None, :, 1, None] * fy[:, None]
    bands = rope.bands.float()  # [F]
    theta = torch.stack([coords[:, axis, None] * bands for axis in range(coords.shape[1])], 1)  # [N, 2, F]
    return theta.reshape(coords.shape[0], -1)[None].expand(heads, -1, -1)


def rotate_pairs(x: Tensor, theta: Tensor, half: bool) -> Tensor:
    """Turn every channel pair of x [H, N, D] by theta [H, N, D/2]."""
    dim = x.shape[-1]
    first, second = (
        (torch.arange(dim // 2), torch.arange(dim // 2) + dim // 2)
        if half
        else (
            torch.arange(0, dim, 2),
            torch.arange(1, dim, 2),
        )
    )
    cos, sin = theta.cos(), theta.sin()
    out = x.clone()
    out[..., first] = (x[..., first] * cos - x[..., second] * sin).to(x.dtype)
    out[..., second] = (x[..., second] * cos + x[..., first] * sin).to(x.dtype)
    return out


def eva_vit(model: nn.Module, images: Tensor, coords: Tensor, schedule: Sequence[int], prop_attn: bool):
    """A timm ``Eva`` with rotary positions and merging (the "mean" rule), in eval mode.

    Args:
        model: the model (class-token or average pooling); its prefix tokens are protected and never rotated.
        images: [B, 3, H, W].
        coords: [N_patches, 2] the patches' coordinates in the model's rotary units.
        schedule: r per block.
        prop_attn: proportional attention.

    Returns:
        (tokens [B, N', C] after ``model.norm``, size [B, N'], coords [B, N', 2] of the patch tokens' merged
        positions, prefix rows included).
    """
    prefix = model.num_prefix_tokens
    half = bool(model.blocks[0].attn.rotate_half)
    x, _ = model._pos_embed(model.patch_embed(images))
    x = model.norm_pre(x)
    all_coords = torch.cat([coords.new_zeros(prefix, coords.shape[1]), coords]).to(x.dtype)
    outputs, sizes, positions = [], [], []
    for sample in x:
        tokens, size, where = sample, torch.ones(sample.shape[0], dtype=x.dtype), all_coords
        for index, (block, r) in enumerate(zip(model.blocks, schedule)):
            parts = eva_block_parts(block)

            def rotate(t: Tensor, where=where, index=index) -> Tensor:
                theta = angles(model.rope, where[prefix:], index, t.shape[0])
                return torch.cat([t[:, :prefix], rotate_pairs(t[:, prefix:], theta, half)], 1)

            out, metric = attention(parts, parts.attn_norm(tokens), size, prop_attn, rotate)
            tokens = tokens + layer_scale(out, parts.attn_gamma)
            width = tokens.shape[1]
            merged, size = merge_step(torch.cat([tokens, where], 1), size, metric, r, prefix, 1)
            tokens, where = merged[:, :width], merged[:, width:]
            tokens = tokens + layer_scale(parts.mlp(parts.mlp_norm(tokens)), parts.mlp_gamma)
        outputs.append(model.norm(tokens))
        sizes.append(size)
        positions.append(where)
    return torch.stack(outputs), torch.stack(sizes), torch.stack(positions)
