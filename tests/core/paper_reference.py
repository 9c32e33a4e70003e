"""A plain reference implementation of the Token Merging forward pass, written from the paper.

Bolya et al., "Token Merging: Your ViT But Faster" (ICLR 2023, arXiv 2210.09461). Every block runs attention,
then merges the r most similar token pairs by bipartite soft matching (Sec. 3, Algorithm 1), then the MLP:

* attention uses proportional attention when asked, softmax(q k^T / sqrt(d) + log s) (Sec. 3, Eq. 1);
* the similarity metric is the attention keys averaged over heads, compared by cosine similarity (Sec. 3);
* tokens alternate between sets A (even positions) and B (odd positions); each A token draws an edge to its most
  similar B token, the r best edges are kept and each chosen A token is merged into its B partner by a
  size-weighted average, the sizes summing (Sec. 3, "Tracking token size");
* the merged sequence is ``[protected | unmerged A, ascending | B]``, over which the next block's alternate split
  runs (the layout of the paper's release for class-token models; without a class token the release leaves the
  unmerged A tokens in edge-score order, while tokenmerge always sorts them);
* the protected leading tokens (class, distillation, register tokens) never merge and nothing merges into them.

Padded batches follow one rule on top of the paper: padding tokens start with size 0, receive no attention, and
merge among themselves first (padding-padding edges before every real edge, padding-real edges after them all).
A "frame" merge scope splits the tokens after the protected ones into equal consecutive groups that each run the
matching on their own, with their own alternate split starting at the group's first token.

This is an oracle for tests: one sample at a time, loops, explicit softmax, clarity over speed. It shares no code
with ``tokenmerge``; it reads the model's own parameters and submodules (linear weights, norms, LayerScale gammas).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

#: Edge kinds, in the order they merge: padding into padding, real into real, then padding with real.
PADDING_EDGE, REAL_EDGE, MIXED_EDGE = 0, 1, 2


@dataclass(frozen=True)
class BlockParts:
    """The pieces of one self-attention + MLP block, taken from a model.

    Pre-norm (ViT): ``x + g1 * O(A(N1(x)))``, merge, ``x + g2 * M(N2(x))``. Post-norm (BERT):
    ``N1(x + O(A(x)))``, merge, ``N2(x + M(x))``.

    Attributes:
        norm_first: True for pre-norm blocks, False for post-norm blocks.
        num_heads: H.
        attn_norm: N1, [N, C] -> [N, C].
        query_weight, key_weight, value_weight: [H*D, C] projections; the biases [H*D] or None.
        q_norm, k_norm: per-head norms on queries and keys, [H, N, D] -> [H, N, D], or None.
        out_weight: [C, H*D] output projection O; out_bias [C] or None.
        attn_gamma: [C] LayerScale g1 of the attention branch, or None.
        mlp_norm: N2, [N, C] -> [N, C].
        mlp: M, [N, C] -> [N, C].
        mlp_gamma: [C] LayerScale g2 of the MLP branch, or None.
    """

    norm_first: bool
    num_heads: int
    attn_norm: Callable[[Tensor], Tensor]
    query_weight: Tensor
    query_bias: Tensor | None
    key_weight: Tensor
    key_bias: Tensor | None
    value_weight: Tensor
    value_bias: Tensor | None
    q_norm: Callable[[Tensor], Tensor] | None
    k_norm: Callable[[Tensor], Tensor] | None
    out_weight: Tensor
    out_bias: Tensor | None
    attn_gamma: Tensor | None
    mlp_norm: Callable[[Tensor], Tensor]
    mlp: Callable[[Tensor], Tensor]
    mlp_gamma: Tensor | None


def timm_block_parts(block: nn.Module) -> BlockParts:
    """The pieces of a timm ``Block`` (ViT, MAE-ST): fused qkv, optional q/k-norm and LayerScale, in eval mode."""
    attn = block.attn
    if not isinstance(attn.norm, nn.Identity) or getattr(attn, "gate", None) is not None:
        raise ValueError("The reference covers timm attention without scale_norm or a gate.")
    query_weight, key_weight, value_weight = attn.qkv.weight.chunk(3)
    biases = (None, None, None) if attn.qkv.bias is None else attn.qkv.bias.chunk(3)
    return BlockParts(
        norm_first=True,
        num_heads=attn.num_heads,
        attn_norm=block.norm1,
        query_weight=query_weight,
        query_bias=biases[0],
        key_weight=key_weight,
        key_bias=biases[1],
        value_weight=value_weight,
        value_bias=biases[2],
        q_norm=None if isinstance(attn.q_norm, nn.Identity) else attn.q_norm,
        k_norm=None if isinstance(attn.k_norm, nn.Identity) else attn.k_norm,
        out_weight=attn.proj.weight,
        out_bias=attn.proj.bias,
        attn_gamma=getattr(block.ls1, "gamma", None),
        mlp_norm=block.norm2,
        mlp=block.mlp,
        mlp_gamma=getattr(block.ls2, "gamma", None),
    )


def bert_layer_parts(layer: nn.Module) -> BlockParts:
    """The pieces of a Hugging Face ``BertLayer`` (post-norm, separate query/key/value), in eval mode."""
    attn = layer.attention.self
    return BlockParts(
        norm_first=False,
        num_heads=attn.num_attention_heads,
        attn_norm=layer.attention.output.LayerNorm,
        query_weight=attn.query.weight,
        query_bias=attn.query.bias,
        key_weight=attn.key.weight,
        key_bias=attn.key.bias,
        value_weight=attn.value.weight,
        value_bias=attn.value.bias,
        q_norm=None,
        k_norm=None,
        out_weight=layer.attention.output.dense.weight,
        out_bias=layer.attention.output.dense.bias,
        attn_gamma=None,
        mlp_norm=layer.output.LayerNorm,
        mlp=lambda h: layer.output.dense(layer.intermediate(h)),
        mlp_gamma=None,
    )


def multihead_attention_parts(
    attn: nn.MultiheadAttention,
    *,
    norm_first: bool,
    attn_norm: Callable[[Tensor], Tensor],
    mlp_norm: Callable[[Tensor], Tensor],
    mlp: Callable[[Tensor], Tensor],
) -> BlockParts:
    """The pieces of a block built on ``torch.nn.MultiheadAttention`` (its fused ``in_proj_weight`` split in three)."""
    query_weight, key_weight, value_weight = attn.in_proj_weight.chunk(3)
    biases = (None, None, None) if attn.in_proj_bias is None else attn.in_proj_bias.chunk(3)
    return BlockParts(
        norm_first=norm_first,
        num_heads=attn.num_heads,
        attn_norm=attn_norm,
        query_weight=query_weight,
        query_bias=biases[0],
        key_weight=key_weight,
        key_bias=biases[1],
        value_weight=value_weight,
        value_bias=biases[2],
        q_norm=None,
        k_norm=None,
        out_weight=attn.out_proj.weight,
        out_bias=attn.out_proj.bias,
        attn_gamma=None,
        mlp_norm=mlp_norm,
        mlp=mlp,
        mlp_gamma=None,
    )


def torchvision_block_parts(block: nn.Module) -> BlockParts:
    """torchvision's ``EncoderBlock`` (pre-norm: ``ln_1``, ``self_attention``, ``ln_2``, ``mlp``), in eval mode."""
    return multihead_attention_parts(
        block.self_attention, norm_first=True, attn_norm=block.ln_1, mlp_norm=block.ln_2, mlp=block.mlp
    )


def transformer_encoder_layer_parts(layer: nn.Module) -> BlockParts:
    """PyTorch's ``nn.TransformerEncoderLayer`` (pre- or post-norm; ``linear1``, activation, ``linear2``), in eval."""
    return multihead_attention_parts(
        layer.self_attn,
        norm_first=layer.norm_first,
        attn_norm=layer.norm1,
        mlp_norm=layer.norm2,
        mlp=lambda h: layer.linear2(layer.activation(layer.linear1(h))),
    )


def linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """x [..., C_in] -> x W^T + b [..., C_out]."""
    out = x @ weight.T
    return out if bias is None else out + bias


def layer_scale(x: Tensor, gamma: Tensor | None) -> Tensor:
    """x [N, C] times the LayerScale gamma [C] (or x itself without LayerScale)."""
    return x if gamma is None else x * gamma


def attention(
    parts: BlockParts, x: Tensor, size: Tensor, prop_attn: bool, rotate: Callable[[Tensor], Tensor] | None = None
) -> tuple[Tensor, Tensor]:
    """Multi-head self-attention of one sample, with proportional attention (Eq. 1), and the ToMe metric.

    Args:
        parts: the block.
        x: [N, C] the attention's input.
        size: [N] token sizes; a key of size 0 (padding) gets no attention whether ``prop_attn`` is on or off.
        prop_attn: add log(size_j) to the scores of every key j.
        rotate: a rotary position embedding, [H, N, D] -> [H, N, D], applied to queries and keys after their norms
            (the metric stays the keys before it), or None.

    Returns:
        (out [N, C] after the output projection, metric [N, D] the keys averaged over heads).
    """
    tokens, heads = x.shape[0], parts.num_heads
    q = linear(x, parts.query_weight, parts.query_bias).reshape(tokens, heads, -1).transpose(0, 1)  # [H, N, D]
    k = linear(x, parts.key_weight, parts.key_bias).reshape(tokens, heads, -1).transpose(0, 1)
    v = linear(x, parts.value_weight, parts.value_bias).reshape(tokens, heads, -1).transpose(0, 1)
    if parts.q_norm is not None:
        q = parts.q_norm(q)
    if parts.k_norm is not None:
        k = parts.k_norm(k)
    metric = k.mean(0)
    if rotate is not None:
        q, k = rotate(q), rotate(k)
    key_bias = torch.zeros(tokens, dtype=x.dtype)
    for j in range(tokens):
        if size[j] == 0:
            key_bias[j] = -math.inf
        elif prop_attn:
            key_bias[j] = math.log(size[j])
    head_outputs = []
    for h in range(heads):
        scores = q[h] @ k[h].T / math.sqrt(q.shape[-1]) + key_bias  # [N, N]: row i attends to key j
        head_outputs.append(torch.softmax(scores, dim=-1) @ v[h])  # [N, D]
    out = linear(torch.cat(head_outputs, dim=-1), parts.out_weight, parts.out_bias)
    return out, metric


def best_edge(i: int, set_b: list[int], similarity: list[list[float]], padding: list[bool]) -> tuple[tuple, int]:
    """The edge A token i draws, as (sort key, partner in B); edges with smaller keys merge first.

    A real token picks its most similar real B token. A padding token picks a padding B token (no content, so
    any). A token with no B token of its own kind falls back to the other kind: a padding-real edge, which
    merges after every other edge.

    Args:
        i: an A token (index into the group).
        set_b: the B tokens.
        similarity: [M][M] cosine similarities of the group's tokens.
        padding: [M] True where a token is padding.
    """
    same_kind = [j for j in set_b if padding[j] == padding[i]]
    if not same_kind:
        return (MIXED_EDGE, 0.0), set_b[0]
    if padding[i]:
        return (PADDING_EDGE, 0.0), same_kind[0]
    partner = max(same_kind, key=lambda j: similarity[i][j])
    return (REAL_EDGE, -similarity[i][partner]), partner


def bipartite_merge(x: Tensor, size: Tensor, metric: Tensor, r: int, first: int) -> tuple[Tensor, Tensor]:
    """Bipartite soft matching (Algorithm 1) and size-weighted merging over one group of tokens.

    Args:
        x: [M, C] the group's tokens.
        size: [M] their sizes (0 for padding).
        metric: [M, D] their metric (keys averaged over heads).
        r: tokens to remove; clamped to M // 2.
        first: position of the group's first token in the sequence the alternation counts over; a token is in
            A if its position is even, in B if odd.

    Returns:
        (x [M - r, C], size [M - r]) laid out as ``[unmerged A, ascending | B]``.
    """
    count = x.shape[0]
    r = min(r, count // 2)
    if r <= 0:
        return x, size
    set_a = [i for i in range(count) if (first + i) % 2 == 0]
    set_b = [i for i in range(count) if (first + i) % 2 == 1]
    unit = metric / metric.norm(dim=-1, keepdim=True)
    similarity, padding = (unit @ unit.T).tolist(), (size == 0).tolist()
    edges = sorted((*best_edge(i, set_b, similarity, padding), i) for i in set_a)
    merged_into = {i: partner for _, partner, i in edges[:r]}
    new_x = [x[i] for i in set_a if i not in merged_into]
    new_size = [size[i] for i in set_a if i not in merged_into]
    for j in set_b:
        members = [j] + [i for i in set_a if merged_into.get(i) == j]
        total = sum(size[m] for m in members)
        new_size.append(total)
        if total == 0:  # padding merged only with padding: no content, keep the destination's features
            new_x.append(x[j])
        else:
            new_x.append(sum(size[m] * x[m] for m in members) / total)
    return torch.stack(new_x), torch.stack(new_size)


def merge_step(x: Tensor, size: Tensor, metric: Tensor, r: int, protected: int, groups: int) -> tuple[Tensor, Tensor]:
    """Merge one sample's tokens, the protected ones kept in front, in ``groups`` consecutive groups.

    Args:
        x: [N, C] tokens.
        size: [N] sizes.
        metric: [N, D] metric.
        r: tokens to remove in all: with one group clamped to (N - protected) // 2, the A/B split running over
            absolute positions; with G groups each group removes r / G (clamped to half its tokens) with its
            own split starting at the group's first token.
        protected: leading tokens that never merge.
        groups: G.

    Returns:
        (x [N', C], size [N']): ``[protected | group 0 merged | group 1 merged | ...]``.
    """
    if r % groups:
        raise ValueError(f"r={r} does not split into {groups} groups; give the reference r as a multiple of groups.")
    count = x.shape[0] - protected
    if count % groups:
        raise ValueError(f"{count} tokens do not split into {groups} equal groups.")
    width = count // groups
    first = protected if groups == 1 else 0
    pieces_x, pieces_size = [x[:protected]], [size[:protected]]
    for g in range(groups):
        span = slice(protected + g * width, protected + (g + 1) * width)
        merged_x, merged_size = bipartite_merge(x[span], size[span], metric[span], r // groups, first)
        pieces_x.append(merged_x)
        pieces_size.append(merged_size)
    return torch.cat(pieces_x), torch.cat(pieces_size)


def block_forward(
    parts: BlockParts, x: Tensor, size: Tensor, r: int, *, protected: int, groups: int, prop_attn: bool
) -> tuple[Tensor, Tensor]:
    """One block with merging between attention and MLP (Sec. 3), for one sample.

    Args:
        parts: the block.
        x: [N, C] tokens.
        size: [N] sizes.
        r: tokens to remove (see :func:`merge_step`).
        protected: leading tokens that never merge.
        groups: merge scope groups (1: all tokens together).
        prop_attn: proportional attention.

    Returns:
        (x [N', C], size [N']).
    """
    if parts.norm_first:
        out, metric = attention(parts, parts.attn_norm(x), size, prop_attn)
        x = x + layer_scale(out, parts.attn_gamma)
    else:
        out, metric = attention(parts, x, size, prop_attn)
        x = parts.attn_norm(x + out)
    x, size = merge_step(x, size, metric, r, protected, groups)
    if parts.norm_first:
        return x + layer_scale(parts.mlp(parts.mlp_norm(x)), parts.mlp_gamma), size
    return parts.mlp_norm(x + parts.mlp(x)), size


def merged_tokens(
    blocks: Sequence[BlockParts],
    x: Tensor,
    schedule: Sequence[int],
    *,
    protected: int,
    prop_attn: bool,
    groups: int = 1,
    mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Run the blocks with merging, one sample at a time.

    Args:
        blocks: the blocks.
        x: [B, N, C] tokens entering the first block.
        schedule: r for each block (each clamped as :func:`merge_step` says).
        protected: leading tokens that never merge.
        prop_attn: proportional attention.
        groups: merge scope groups.
        mask: [B, N] 1 for real tokens and 0 for padding (size 0), or None.

    Returns:
        (x [B, N', C], size [B, N']) after the last block.
    """
    if len(schedule) != len(blocks):
        raise ValueError(f"schedule has {len(schedule)} entries for {len(blocks)} blocks.")
    outputs, sizes = [], []
    for b in range(x.shape[0]):
        tokens = x[b]
        size = torch.ones(x.shape[1], dtype=x.dtype) if mask is None else mask[b].to(x.dtype)
        for parts, r in zip(blocks, schedule):
            tokens, size = block_forward(
                parts, tokens, size, r, protected=protected, groups=groups, prop_attn=prop_attn
            )
        outputs.append(tokens)
        sizes.append(size)
    return torch.stack(outputs), torch.stack(sizes)


def size_weighted_mean(x: Tensor, size: Tensor) -> Tensor:
    """sum_i s_i x_i / sum_i s_i over tokens: x [N, C], size [N] -> [C]."""
    return (size[:, None] * x).sum(0) / size.sum()


def timm_vit(model: nn.Module, images: Tensor, schedule: Sequence[int], prop_attn: bool) -> tuple[Tensor, ...]:
    """A timm ``VisionTransformer`` (class token or average pooling) with merging, in eval mode.

    Args:
        model: the ViT; its class, distillation and register tokens (``num_prefix_tokens``) are protected.
        images: [B, 3, H, W].
        schedule: r per block.
        prop_attn: proportional attention.

    Returns:
        (tokens [B, N', C] after ``model.norm``, size [B, N'], logits [B, K]): ``global_pool="token"`` reads the
        class token, ``"avg"`` the size-weighted mean of the other tokens, then ``fc_norm`` and the head.
    """
    if model.pool_include_prefix or model.global_pool not in ("token", "avg"):
        raise ValueError("The reference covers class-token and average pooling over the patch tokens only.")
    protected = model.num_prefix_tokens
    x = model.norm_pre(model._pos_embed(model.patch_embed(images)))
    blocks = [timm_block_parts(block) for block in model.blocks]
    tokens, size = merged_tokens(blocks, x, schedule, protected=protected, prop_attn=prop_attn)
    tokens = model.norm(tokens)
    if model.global_pool == "token":
        pooled = tokens[:, 0]
    else:
        pooled = torch.stack([size_weighted_mean(t[protected:], s[protected:]) for t, s in zip(tokens, size)])
    logits = linear(model.fc_norm(pooled), model.head.weight, model.head.bias)
    return tokens, size, logits


def spatiotemporal_vit(
    model: nn.Module, clips: Tensor, schedule: Sequence[int], prop_attn: bool, scope: str
) -> tuple[Tensor, ...]:
    """A SpatiotemporalViT (MAE-ST layout, time-major tokens) with merging, in eval mode.

    Args:
        model: the model; its class token (if any) is protected.
        clips: [B, 3, T, H, W].
        schedule: r per block; in the "frame" scope each of the T' time slices removes r / T'.
        prop_attn: proportional attention.
        scope: "spacetime" (all tokens match together) or "frame" (each time slice on its own).

    Returns:
        (tokens [B, N', C] after the last block, size [B, N'], logits [B, K]): size-weighted mean of the patch
        tokens, then ``model.norm`` and the head.
    """
    protected = model.num_prefix_tokens
    groups = {"spacetime": 1, "frame": model.patch_embed.grid_size[0]}[scope]
    blocks = [timm_block_parts(block) for block in model.blocks]
    tokens, size = merged_tokens(
        blocks, model.embed(clips), schedule, protected=protected, prop_attn=prop_attn, groups=groups
    )
    pooled = torch.stack([size_weighted_mean(t[protected:], s[protected:]) for t, s in zip(tokens, size)])
    logits = linear(model.norm(pooled), model.head.weight, model.head.bias)
    return tokens, size, logits


def bert_mean_pooled(
    model: nn.Module, ids: Tensor, mask: Tensor, schedule: Sequence[int], prop_attn: bool
) -> tuple[Tensor, ...]:
    """A Hugging Face ``BertModel`` with merging, its class token protected, in eval mode.

    Args:
        model: the BertModel.
        ids: [B, N] token ids.
        mask: [B, N] 1 for real tokens, 0 for padding.
        schedule: r per layer.
        prop_attn: proportional attention.

    Returns:
        (tokens [B, N', C] after the last layer, size [B, N'], embedding [B, C]): the size-weighted mean of all
        tokens, the class token included (padding weighs 0).
    """
    blocks = [bert_layer_parts(layer) for layer in model.encoder.layer]
    x = model.embeddings(input_ids=ids)
    tokens, size = merged_tokens(blocks, x, schedule, protected=1, prop_attn=prop_attn, mask=mask)
    pooled = torch.stack([size_weighted_mean(t, s) for t, s in zip(tokens, size)])
    return tokens, size, pooled


def torchvision_vit(model: nn.Module, images: Tensor, schedule: Sequence[int], prop_attn: bool) -> tuple[Tensor, ...]:
    """torchvision's ``VisionTransformer`` with merging, its class token protected, in eval mode.

    Returns:
        (tokens [B, N', C] after ``encoder.ln``, size [B, N'], logits [B, K] from the class token).
    """
    x = model._process_input(images)
    x = torch.cat([model.class_token.expand(x.shape[0], -1, -1), x], dim=1) + model.encoder.pos_embedding
    blocks = [torchvision_block_parts(block) for block in model.encoder.layers]
    tokens, size = merged_tokens(blocks, x, schedule, protected=1, prop_attn=prop_attn)
    tokens = model.encoder.ln(tokens)
    return tokens, size, model.heads(tokens[:, 0])


def transformer_encoder(encoder: nn.Module, x: Tensor, schedule: Sequence[int], prop_attn: bool, protected: int):
    """An ``nn.TransformerEncoder`` with merging on batch-first tokens x [B, N, C], in eval mode.

    Returns:
        (tokens [B, N', C] after the encoder's final norm if any, size [B, N']).
    """
    blocks = [transformer_encoder_layer_parts(layer) for layer in encoder.layers]
    tokens, size = merged_tokens(blocks, x, schedule, protected=protected, prop_attn=prop_attn)
    return (tokens if encoder.norm is None else encoder.norm(tokens)), size
