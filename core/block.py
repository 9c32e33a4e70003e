"""Token Merging inside a pre-norm transformer block, by re-driving the block's own submodules.

ToMe (Bolya et al., ICLR 2023, Sec. 3) merges between the attention and the MLP of each block, using
the attention keys averaged over heads as the similarity metric, and adds log(size) to the attention
scores (proportional attention). The official release swaps ``__class__`` and copies timm 0.4.12's
forward, which on current timm drops LayerScale, q/k-norm and fused attention. Here the block keeps its
class and every submodule: norm1, attn (qkv, q_norm, k_norm, norm, gate, proj and their dropouts),
ls1/ls2 (LayerScale), drop_path1/drop_path2, norm2 and mlp are all called as the block would call them.

The layout is timm's ``Block`` (and ``Attention``), which is also what MAE, MAE-ST and AudioMAE build on;
the check is by structure, so this module imports torch only.
"""

from __future__ import annotations

from torch import Tensor, nn

from .attention import proportional_attention
from .scope import grouped_reduction
from .state import TokenState, get_reduction

BLOCK_PARTS = ("norm1", "attn", "ls1", "drop_path1", "norm2", "mlp", "ls2", "drop_path2")
ATTENTION_PARTS = ("qkv", "q_norm", "k_norm", "proj", "proj_drop", "attn_drop", "num_heads", "head_dim")


def check_block(block: nn.Module, where: str = "block") -> None:
    """Raise a clear error unless ``block`` has the pre-norm layout :func:`merging_block_forward` drives."""
    missing = [p for p in BLOCK_PARTS if not hasattr(block, p)]
    if not missing:
        missing = [f"attn.{p}" for p in ATTENTION_PARTS if not hasattr(block.attn, p)]
    if missing:
        raise TypeError(
            f"{where} ({type(block).__name__}) does not have the pre-norm ViT block layout Token Merging patches "
            f"(timm's Block with Attention); missing: {', '.join(missing)}. Supported: timm VisionTransformer "
            "blocks and models built from them (DeiT, DeiT-III, MAE, MAE-ST, AudioMAE)."
        )


def attention_with_metric(attn: nn.Module, x: Tensor, size: Tensor | None) -> tuple[Tensor, Tensor]:
    """timm ``Attention`` forward with proportional attention, also returning the ToMe metric.

    Args:
        attn: a timm-style attention module (qkv, q_norm, k_norm, optional norm/gate, proj).
        x: [B, N, C] normalized tokens.
        size: [B, N, 1] token sizes for proportional attention, or None for plain attention.

    Returns:
        (out [B, N, C], metric [B, N, D]): attention output and keys averaged over heads.
    """
    batch, tokens, _ = x.shape
    gate = getattr(attn, "gate", None)
    gate = gate(x).sigmoid() if gate is not None else None
    attn_dim = attn.num_heads * attn.head_dim
    qkv = attn.qkv(x).reshape(batch, tokens, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    q, k = attn.q_norm(q), attn.k_norm(k)
    out = proportional_attention(q, k, v, size, dropout_p=attn.attn_drop.p if attn.training else 0.0)
    out = out.transpose(1, 2).reshape(batch, tokens, attn_dim)
    norm = getattr(attn, "norm", None)
    if norm is not None:
        out = norm(out)
    if gate is not None:
        out = out * gate
    return attn.proj_drop(attn.proj(out)), k.mean(1)


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
) -> Tensor:
    """One block with merging between attention and MLP.

    Args:
        block: a block that passed :func:`check_block`.
        x: [B, N, C] tokens.
        state: sizes/sources so far; updated in place.
        r: tokens to remove in this block (clamped by the matching).
        protected: leading tokens that never merge (class, distillation, register tokens).
        prop_attn: add log(size) to the attention scores.
        method: "tome", or a baseline from :data:`tokenmerge.core.state.REDUCTIONS`.
        groups: match within this many equal groups of tokens after the protected ones (a merge scope such
            as a video's frames, see :mod:`tokenmerge.core.scope`); r must then be a multiple of it.

    Returns:
        [B, N - r, C].
    """
    attn_out, metric = attention_with_metric(block.attn, block.norm1(x), state.size if prop_attn else None)
    x = x + block.drop_path1(block.ls1(attn_out))
    if r > 0:
        x = state.merge(grouped_reduction(get_reduction(method), metric, r, protected=protected, groups=groups), x)
    return x + block.drop_path2(block.ls2(block.mlp(block.norm2(x))))
