"""Token Merging inside a transformer block, by re-driving the block's own submodules.

ToMe (Bolya et al., ICLR 2023, Sec. 3) merges between the attention and the MLP of each block, using
the attention keys averaged over heads as the similarity metric, and adds log(size) to the attention
scores (proportional attention). The official release swaps ``__class__`` and copies timm 0.4.12's
forward, which on current timm drops LayerScale, q/k-norm and fused attention. Here the block keeps its
class and every submodule: a :class:`~tokenmerge.core.layout.BlockLayout` says where each piece is
(:data:`~tokenmerge.core.layout.TIMM_BLOCK` for timm's ``Block``, which is also what MAE, MAE-ST and
AudioMAE build on; a post-norm layout for BERT-style encoders), and every piece is called as the block
would call it. Padding tokens (size 0, see :class:`~tokenmerge.core.state.TokenState`) receive no attention.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import biased_attention
from .layout import TIMM_BLOCK, BlockLayout
from .positions import Rotary
from .scope import grouped_reduction
from .state import TokenState, get_reduction
from .unsupported import unsupported_reason


def check_block(block: nn.Module, where: str = "block", layout: BlockLayout = TIMM_BLOCK, rotary: bool = False) -> None:
    """Raise a clear ``TypeError`` unless :func:`merging_block_forward` can drive ``block`` with ``layout``
    (``rotary``: the adapter carries token positions for the block's rotary embedding, so RoPE is allowed)."""
    reason = unsupported_reason(block, rotary=rotary)
    if reason:
        raise TypeError(f"{where} ({type(block).__name__}) cannot merge tokens: {reason}")
    missing = layout.missing(block)
    if missing and layout is TIMM_BLOCK:
        raise TypeError(
            f"{where} ({type(block).__name__}) does not have the block layout Token Merging patches (timm's Block "
            f"with Attention); missing: {', '.join(missing)}. Supported out of the box: timm VisionTransformer "
            "blocks and models built from them (DeiT, DeiT-III, MAE, MAE-ST, AudioMAE); for another model give its "
            "adapter a BlockLayout that names these pieces (README: 'Add merging to your own model')."
        )
    if missing:
        raise TypeError(
            f"{where} ({type(block).__name__}) does not fit the adapter's BlockLayout; missing: {', '.join(missing)}. "
            f"Paths are attribute paths from the block (print(block) shows them)."
        )
    problem = layout.head_problem(block)
    if problem:
        raise TypeError(f"{where} ({type(block).__name__}): BlockLayout {problem}.")


def _apply(modules: list[nn.Module], x: Tensor) -> Tensor:
    for module in modules:
        x = module(x)
    return x


def multihead_attention_projections(attention: nn.MultiheadAttention, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The queries, keys and values a ``torch.nn.MultiheadAttention`` makes from x [B, N, C]: three [B, N, C].

    One fused ``in_proj_weight`` [3C, C] or, with other key/value widths declared equal, ``q/k/v_proj_weight``;
    ``in_proj_bias`` [3C] or None.
    """
    bias = (None,) * 3 if attention.in_proj_bias is None else attention.in_proj_bias.chunk(3)
    if attention.in_proj_weight is not None:
        weights = attention.in_proj_weight.chunk(3)
    else:
        weights = (attention.q_proj_weight, attention.k_proj_weight, attention.v_proj_weight)
    return tuple(F.linear(x, w, b) for w, b in zip(weights, bias))


def _fused_qkv(block: nn.Module, layout: BlockLayout, x: Tensor) -> Tensor:
    """The fused projection [B, N, 3*H*D], with the separate ``qkv_bias`` tensors added where the layout names them."""
    projection = layout.module(block, "qkv")
    biases = layout.tensors(block, "qkv_bias")
    if not biases or all(b is None for b in biases):
        return projection(x)
    width = projection.weight.shape[0] // 3
    bias = torch.cat([x.new_zeros(width) if b is None else b.to(x.dtype) for b in biases])
    return F.linear(x, projection.weight, bias if projection.bias is None else projection.bias + bias)


def _attention_dropout(block: nn.Module, layout: BlockLayout) -> float:
    """The attention-probability dropout while training: ``attn_dropout.p``, else a ``nn.MultiheadAttention``'s
    ``dropout``; 0 in eval mode."""
    dropout = layout.module(block, "attn_dropout")
    if not block.training:
        return 0.0
    if dropout is not None:
        return dropout.p
    if layout.multihead_attention is not None:
        return layout.module(block, "multihead_attention").dropout
    return 0.0


#: Most heads for which :func:`mean_over_heads` adds the head slices one by one on CPU.
CHAINED_HEAD_SUM_MAX_HEADS = 8


def mean_over_heads(k: Tensor) -> Tensor:
    """Keys [B, H, N, D] -> their mean over heads [B, N, D] (ToMe's similarity metric): ``k.mean(1)`` within a few ulps.

    On CPU, for float32/float64 keys and at most :data:`CHAINED_HEAD_SUM_MAX_HEADS` heads, the heads are added one
    slice at a time, in ``k.mean``'s order: a reduction over the strided head dim of the fused qkv output costs about
    twice as much there (``benchmarks/merge_overhead.py --rounds 25``: 0.85 ms against 1.79 ms at 32 x 4 x 257 x 32,
    0.52 against 0.81 ms at 64 x 4 x 65 x 32, one thread). With 12 heads the reduction was faster in a direct
    timing (0.25 against 0.34 ms at 8 x 12 x 197 x 64). Elsewhere, and for float16/bfloat16 (whose mean accumulates
    in float32), it is ``k.mean(1)``.
    """
    heads = k.shape[1]
    chained = k.device.type == "cpu" and k.dtype in (torch.float32, torch.float64)
    if not chained or not 1 < heads <= CHAINED_HEAD_SUM_MAX_HEADS:
        return k.mean(1)
    total = k[:, 0] + k[:, 1]
    for head in range(2, heads):
        total += k[:, head]
    return total.div_(heads)


def attention_with_metric(
    block: nn.Module,
    x: Tensor,
    bias: Tensor | None,
    layout: BlockLayout = TIMM_BLOCK,
    kernel: str = "mask",
    rotary: Rotary | None = None,
    positions: Tensor | None = None,
    with_metric: bool = True,
) -> tuple[Tensor, Tensor | None]:
    """The block's multi-head self-attention with an additive score bias, also returning the ToMe metric.

    Args:
        block: a block that passed :func:`check_block` with ``layout``.
        x: [B, N, C] the attention's input (normalized first in pre-norm blocks).
        bias: [B, 1, 1, N] additive bias on the scores (log-size, -inf for padding; see
            :meth:`TokenState.attention_bias`), or None for plain attention.
        layout: where the block's pieces are.
        kernel: how attention adds the log-size bias, "mask" or "folded" (see :mod:`tokenmerge.core.attention`).
        rotary: the block's rotary embedding (RoPE), applied to queries and keys after the q/k norms; or None.
        positions: [B, N, P] the tokens' coordinates for ``rotary``.
        with_metric: compute the metric; False (a block that merges nothing) returns None for it and saves the
            head average, about 2% of a block of width 128 on CPU.

    Returns:
        (out [B, N, C], metric [B, N, D] or None): the attention branch after ``attn_out``, and keys averaged over
        heads (before any rotation: the metric compares content, not position).
    """
    batch, tokens, _ = x.shape
    heads = layout.heads(block)
    if layout.qkv is not None:
        qkv = _fused_qkv(block, layout, x).reshape(batch, tokens, 3, heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
    elif layout.multihead_attention is not None:
        projected = multihead_attention_projections(layout.module(block, "multihead_attention"), x)
        q, k, v = (p.reshape(batch, tokens, heads, -1).transpose(1, 2) for p in projected)
    else:
        q, k, v = (
            layout.module(block, name)(x).reshape(batch, tokens, heads, -1).transpose(1, 2)
            for name in ("query", "key", "value")
        )
    q_norm, k_norm = layout.module(block, "q_norm"), layout.module(block, "k_norm")
    if q_norm is not None:
        q = q_norm(q)
    if k_norm is not None:
        k = k_norm(k)
    metric = mean_over_heads(k) if with_metric else None
    if rotary is not None:
        q, k = rotary(q, k, positions)
    out = biased_attention(q, k, v, bias, dropout_p=_attention_dropout(block, layout), kernel=kernel)
    out = out.transpose(1, 2).reshape(batch, tokens, -1)
    heads_norm, gate = layout.module(block, "heads_norm"), layout.module(block, "gate")
    if heads_norm is not None:
        out = heads_norm(out)
    if gate is not None:
        out = out * gate(x).sigmoid()
    return _apply(layout.modules(block, "attn_out"), out), metric


def merging_block_forward(
    block: nn.Module,
    x: Tensor,
    state: TokenState,
    r: int,
    *,
    protected: int,
    prop_attn: bool,
    method: str = "tome",
    groups: int = 1,
    layout: BlockLayout = TIMM_BLOCK,
    attention: str = "mask",
    rotary: Rotary | None = None,
) -> Tensor:
    """One block with merging between attention and MLP.

    Args:
        block: a block that passed :func:`check_block` with ``layout``.
        x: [B, N, C] tokens.
        state: sizes/sources so far; updated in place.
        r: tokens to remove in this block (clamped by the matching).
        protected: leading tokens that never merge (class, distillation, register tokens).
        prop_attn: add log(size) to the attention scores.
        method: "tome", or a baseline from :data:`tokenmerge.core.state.REDUCTIONS`.
        groups: match within this many equal groups of tokens after the protected ones (a merge scope such
            as a video's frames, see :mod:`tokenmerge.core.scope`); r must then be a multiple of it.
        layout: where the block's pieces are and whether it is pre-norm or post-norm.
        attention: how attention adds the log-size bias, "mask" or "folded" (see :mod:`tokenmerge.core.attention`).
        rotary: the block's rotary embedding, applied at ``state.positions`` (a RoPE model); or None.

    Returns:
        [B, N - r, C].
    """
    if rotary is not None and state.positions is None:
        raise ValueError("A block with a rotary embedding needs the token positions (TokenState.positions).")
    bias = state.attention_bias(prop_attn, x.dtype)
    attn_norm, mlp_norm = layout.module(block, "attn_norm"), layout.module(block, "mlp_norm")
    attn_residual, mlp_residual = layout.modules(block, "attn_residual"), layout.modules(block, "mlp_residual")
    mlp = layout.modules(block, "mlp")
    attn_gamma, mlp_gamma = layout.module(block, "attn_gamma"), layout.module(block, "mlp_gamma")
    attn_in = attn_norm(x) if layout.norm_first else x
    attn_out, metric = attention_with_metric(block, attn_in, bias, layout, attention, rotary, state.positions, r > 0)
    if attn_gamma is not None:
        attn_out = attn_gamma * attn_out
    if layout.norm_first:
        x = x + _apply(attn_residual, attn_out)
    else:
        x = attn_norm(x + _apply(attn_residual, attn_out))
    if r > 0:
        reduction = grouped_reduction(
            get_reduction(method, state.generator), metric, r, protected=protected, groups=groups, padding=state.padding
        )
        x = state.merge(reduction, x)
    mlp_out = _apply(mlp, mlp_norm(x) if layout.norm_first else x)
    if mlp_gamma is not None:
        mlp_out = mlp_gamma * mlp_out
    if layout.norm_first:
        return x + _apply(mlp_residual, mlp_out)
    return mlp_norm(x + _apply(mlp_residual, mlp_out))
