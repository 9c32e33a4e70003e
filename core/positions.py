"""Token positions for rotary position embeddings (RoPE): carried with the tokens and merged with them.

A RoPE model rotates every query and key by its token's position inside every attention (timm's EVA-02 and
``*_rope`` ViTs). Merging moves tokens, so each token's position travels in the :class:`TokenState` as coordinates
[B, N, P] (in the model's own rotary units, e.g. its grid's row and column), is merged with the tokens, and every
block rotates by the merged positions with the model's own rotary embedding (a :class:`Rotary` from the adapter).
A merged token's position follows one of two rules:

* ``"destination"`` (default): the position of the token it merged into (ToMe's B token keeps its own; a position
  on the grid, which the model was trained on);
* ``"mean"``: the size-weighted mean of its members' coordinates (where its patches are on average; large merged
  tokens drift off the grid towards the centre of their group).

Measured on the embedded RoPE ViT (``python -m tokenmerge.image.rope_positions``, 1,050 held-out images):
``"destination"`` keeps the predictions closer to the unmerged model's at large r (mean KL 0.0115 vs 0.0198 at
r = 10, 0.0079 vs 0.0102 at r = 8; equal within 0.0001 at r = 4 and 6, "mean" lower at r = 2: 0.0009 vs 0.0014),
so it is the default.

The rotary angles are linear in the coordinates, so with ``"mean"`` a token's angles are its members' mean angles.
Coordinates stay in float32 (float64 for float64 tokens) whatever the token dtype. The similarity metric is the
keys before rotation (content, not position).
"""

from __future__ import annotations

from typing import Protocol

from torch import Tensor

from .merge import TokenReduction, exact_dtype, merge_wavg

#: How a merged token's position is made from its members' (see the module docstring); the first is the default.
POSITION_RULES = ("destination", "mean")


class Rotary(Protocol):
    """One block's rotary embedding at given token positions.

    ``rotary(q, k, positions) -> (q, k)`` with q, k [B, H, N, D] (after any q/k norm) and positions [B, N, P];
    it leaves the protected tokens as the model does (timm does not rotate prefix tokens).
    """

    def __call__(self, q: Tensor, k: Tensor, positions: Tensor) -> tuple[Tensor, Tensor]: ...


def check_position_rule(rule: str) -> None:
    """Raise a clear ``ValueError`` unless ``rule`` is one of :data:`POSITION_RULES`."""
    if rule not in POSITION_RULES:
        raise ValueError(f"Unknown position_rule {rule!r}; choose one of {list(POSITION_RULES)}.")


def merge_positions(
    reduction: TokenReduction, positions: Tensor, size: Tensor | None, rule: str = POSITION_RULES[0]
) -> Tensor:
    """Positions of the merged tokens.

    Args:
        reduction: the matching being applied to the tokens.
        positions: [B, N, P] coordinates of the tokens before the merge.
        size: [B, N, 1] the tokens' sizes before the merge (None: all 1).
        rule: "destination" (the destination token's own) or "mean" (size-weighted mean of the members').

    Returns:
        [B, N - r, P] in float32 (float64 for float64 positions).
    """
    check_position_rule(rule)
    positions = positions.to(exact_dtype(positions.dtype))
    if rule == "destination":
        return reduction.merge(positions, mode="keep")
    return merge_wavg(reduction, positions, None if size is None else size.to(positions.dtype))[0]
