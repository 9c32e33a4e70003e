"""Blocks Token Merging cannot patch, recognised by what they hold, with the reason in words.

Merging shortens and reorders the token sequence inside every block. That is only sound when a block's
attention treats its tokens as a set: every token attends to every other, with no structure tied to
where a token sits in a fixed grid. Three common designs break that, and each is named here so that a user
gets the reason rather than a shape error deep inside a forward pass.
"""

from __future__ import annotations

from torch import nn

#: (attribute names that reveal the design, why merging does not fit it)
UNSUPPORTED_DESIGNS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("window_area", "shift_size", "window_partition"),
        "windowed or shifted-window attention (Swin-style) attends within fixed windows of a token grid; "
        "merged tokens no longer fill a grid that can be cut into windows. Merge in a plain global-attention "
        "ViT, or between stages of a hierarchical model with its own pooling.",
    ),
    (
        ("relative_position_bias_table", "relative_position_index", "rel_pos_h", "rel_pos_w", "rel_pos_bias"),
        "a relative position bias is indexed by each pair's offset on a fixed token grid (BEiT, Swin, MViT-style "
        "rel-pos); after a merge tokens have no single grid position, so the bias cannot be looked up. Use a "
        "model with absolute position embeddings (added once, before the first block).",
    ),
    (
        ("crossattention", "cross_attn", "encoder_attn", "cross_attention"),
        "the block has cross-attention, whose queries or keys come from another sequence (an encoder's output "
        "or a prompt); merging in self-attention would need the same reduction on the other side. Patch the "
        "self-attention-only encoder instead.",
    ),
)


def unsupported_reason(block: nn.Module) -> str | None:
    """Why ``block`` cannot merge tokens (window attention, grid-tied relative position bias, cross-attention),
    one sentence per design found in it or its submodules; None when there is none."""
    reasons = {}
    for name, module in block.named_modules():
        for markers, reason in UNSUPPORTED_DESIGNS:
            found = [m for m in markers if _has_design(module, m)]
            if found and reason not in reasons:
                reasons[reason] = f"{name + '.' if name else ''}{found[0]}"
    return " Also: ".join(f"{where} found: {reason}" for reason, where in reasons.items()) or None


def _has_design(module: nn.Module, marker: str) -> bool:
    """Whether ``module`` holds ``marker`` as a submodule, parameter, buffer or plain attribute (not None, not 0)."""
    value = getattr(module, marker, None)
    if value is None or value is False:
        return False
    if isinstance(value, int | tuple) and not any(v for v in (value if isinstance(value, tuple) else (value,))):
        return False
    return True
