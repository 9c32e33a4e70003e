"""Blocks Token Merging cannot patch, recognised by what they hold, with the reason in words.

Merging shortens and reorders the token sequence inside every block. That is only sound when a block's
attention treats its tokens as a set: every token attends to every other, with no structure tied to
where a token sits in a fixed grid or sequence order. Common designs break that, and each is named here so
that a user gets the reason rather than a shape error deep inside a forward pass, or a silently wrong output.
"""

from __future__ import annotations

import inspect

from torch import nn

WINDOWS = (
    "windowed or shifted-window attention (Swin-style) attends within fixed windows of a token grid; merged tokens "
    "no longer fill a grid that can be cut into windows. Merge in a plain global-attention ViT, or between stages "
    "of a hierarchical model with its own pooling."
)
RELATIVE_POSITIONS = (
    "a relative position bias is indexed by each pair's offset on a fixed token grid (BEiT, Swin, timm's relpos "
    "ViTs); after a merge tokens have no single grid position, so the bias cannot be looked up. Use a model with "
    "absolute position embeddings (added once, before the first block)."
)
CROSS_ATTENTION = (
    "the block has cross-attention, whose queries or keys come from another sequence (an encoder's output or a "
    "prompt); merging in self-attention would need the same reduction on the other side. Patch the "
    "self-attention-only encoder instead."
)
ROTARY = (
    "rotary position embeddings (RoPE) rotate every query and key by its token's position inside each attention, "
    "and this adapter does not carry token positions, so the patched attention would rotate by none (a silently "
    "wrong output). tokenmerge.apply_patch merges in timm's RoPE models (EVA-02, *_rope ViTs) by carrying each "
    "token's position; for another RoPE model give its ModelAdapter token_positions and rotary "
    "(tokenmerge.core.positions)."
)
CAUSAL = (
    "the block's attention is causal (a decoder: each token sees only earlier ones); merging mixes positions, and "
    "the patched attention is bidirectional. Token Merging here is for encoder-only self-attention."
)

#: (attribute names that reveal the design, why merging does not fit it); checked on every submodule of a block.
UNSUPPORTED_DESIGNS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("relative_position_bias_table", "relative_position_index", "rel_pos", "rel_pos_h", "rel_pos_bias"),
        RELATIVE_POSITIONS,
    ),
    (("rope", "rotary_emb", "rotary_pos_emb", "freqs_cis"), ROTARY),
    (("shift_size", "window_partition"), WINDOWS),
    (("crossattention", "cross_attn", "encoder_attn", "cross_attention"), CROSS_ATTENTION),
    (("is_causal", "is_decoder"), CAUSAL),
)
#: Class-name fragments that reveal a design the attributes may not (an unshifted Swin block).
UNSUPPORTED_CLASSES = (("WindowAttention", WINDOWS), ("Rotary", ROTARY), ("Rope", ROTARY))
#: Model-level attributes: positions computed once and handed to every block (timm's shared relative positions,
#: EVA's rotary embedding).
UNSUPPORTED_MODEL_PARTS = (
    ("shared_rel_pos", RELATIVE_POSITIONS),
    ("rope", ROTARY),
    ("rotary_emb", ROTARY),
    ("rotary_pos_emb", ROTARY),
)
#: Fragments of a block's forward parameters that reveal positions handed in by the model, checked in order:
#: rotary embeddings first (Hugging Face passes RoPE's (cos, sin) as ``position_embeddings``), then biases.
PASSED_IN = ((("rope", "rotary", "freqs", "position_embeddings"), ROTARY), (("pos", "bias"), RELATIVE_POSITIONS))


def unsupported_reason(block: nn.Module, rotary: bool = False) -> str | None:
    """Why ``block`` cannot merge tokens (grid-tied relative position bias, rotary position embeddings, window
    attention, cross-attention, causal attention, positions or a bias passed into its forward), one sentence per
    design found in it or its submodules; None when there is none. ``rotary``: the adapter carries token positions
    for the block's rotary embedding, so RoPE is no reason."""
    reasons = {}
    for name, module in block.named_modules():
        where = f"{name}." if name else ""
        for markers, reason in UNSUPPORTED_DESIGNS:
            found = [m for m in markers if _has_design(module, m)]
            if found and reason not in reasons:
                reasons[reason] = f"{where}{found[0]}"
        for fragment, reason in UNSUPPORTED_CLASSES:
            if fragment in type(module).__name__ and reason not in reasons:
                reasons[reason] = f"{name or 'the block'} ({type(module).__name__})"
    for parameter in inspect.signature(block.forward).parameters:
        for fragments, reason in PASSED_IN:
            if any(f in parameter for f in fragments):
                reasons.setdefault(reason, f"forward({parameter}=...)")
                break
    found = [f"{where} found: {reason}" for reason, where in reasons.items() if not (rotary and reason is ROTARY)]
    return " Also: ".join(found) or None


def unsupported_model_reason(model: nn.Module, rotary: bool = False) -> str | None:
    """Why ``model`` as a whole cannot merge tokens (positions shared by all blocks: a relative position bias or a
    rotary embedding, unless ``rotary``: the adapter carries token positions), or None."""
    for marker, reason in UNSUPPORTED_MODEL_PARTS:
        if rotary and reason is ROTARY:
            continue
        if _has_design(model, marker):
            return f"{marker} found: {reason}"
    return None


def _has_design(module: nn.Module, marker: str) -> bool:
    """Whether ``module`` holds ``marker`` as a submodule, parameter, buffer or plain attribute (not None, not 0)."""
    value = getattr(module, marker, None)
    if value is None or value is False:
        return False
    if isinstance(value, int | tuple) and not any(v for v in (value if isinstance(value, tuple) else (value,))):
        return False
    return True
