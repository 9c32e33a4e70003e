"""Token Merging for spatiotemporal ViTs (MAE-ST layout): the video adapter.

Two merge scopes, both with r = tokens each block removes, so they are compared at equal cost:

* ``"spacetime"`` (default, the ToMe paper's video setting): all tokens of the clip are matched together, so
  a token can merge with tokens of other frames (an object that stays put over time becomes one token).
* ``"frame"``: matching and merging stay within each tubelet time slice, as in the "divided" scheme compared by
  Pollard & Wray, "Video, How Do Your Tokens Merge?" (CVPR-W 2025). Every slice removes the same number of
  tokens, so a block removes a multiple of T' (the number of slices): r is split as r / T' per slice, rounded
  down, with the rounding carried over so that the running total removed stays within T' - 1 tokens of the
  spacetime schedule's (see ``tokenmerge.core.resolve_schedule``'s ``groups``). ``handle.schedule(N)`` gives
  the exact counts.

The class token never merges. Sizes are tracked in float32 whatever the model's dtype.
"""

from __future__ import annotations

from torch import Tensor, nn

from tokenmerge.core import ModelAdapter, ScheduleSpec, TokenState, ToMeHandle, patch_model, size_weighted_mean


class SpatiotemporalAdapter(ModelAdapter):
    """:class:`~tokenmerge.video.SpatiotemporalViT` and models with its parts (see ``required_parts``)."""

    merge_scopes = ("spacetime", "frame")
    required_parts = ("embed", "time_slices", "blocks", "norm", "head_drop", "head", "num_prefix_tokens")
    supports = "tokenmerge.video.apply_patch supports SpatiotemporalViT (MAE-ST layout)"
    parts_hint = "For other video models, write a ModelAdapter (tokenmerge.core)."

    def protected(self, model: nn.Module) -> int:
        return int(model.num_prefix_tokens)

    def embed(self, model: nn.Module, inputs: Tensor) -> Tensor:
        """Clips [B, 3, T, H, W] -> [B, prefix + T'H'W', C], time-major."""
        return model.embed(inputs)

    def finish(self, model: nn.Module, x: Tensor) -> Tensor:
        """MAE-ST normalizes after pooling, so the tokens leave the last block unchanged."""
        return x

    def head(self, model: nn.Module, x: Tensor, state: TokenState, pre_logits: bool = False) -> Tensor:
        """Size-weighted mean of the patch tokens (= the mean over the unmerged patches), norm, dropout, linear."""
        prefix = self.protected(model)
        size = None if state.size is None else state.size[:, prefix:]
        pooled = model.head_drop(model.norm(size_weighted_mean(x[:, prefix:], size)))
        return pooled if pre_logits else model.head(pooled)

    def num_groups(self, model: nn.Module, scope: str) -> int:
        return model.time_slices if scope == "frame" else 1


def apply_patch(
    model: nn.Module,
    r: ScheduleSpec = 0,
    *,
    merge_scope: str = "spacetime",
    prop_attn: bool = True,
    trace_source: bool = False,
    method: str = "tome",
    attention: str = "mask",
    seed: int | None = None,
) -> ToMeHandle:
    """Make a SpatiotemporalViT merge tokens; returns the shared handle (``handle.remove()`` undoes it).

    Args:
        model: a :class:`~tokenmerge.video.SpatiotemporalViT`.
        r: tokens each block removes: int, per-layer list, (r, inflection) ramp or float ratio (in both scopes).
        merge_scope: "spacetime" (match across the whole clip, the paper's setting) or "frame" (within each time slice).
        prop_attn: proportional attention (off for off-the-shelf MAE-ST checkpoints, as the paper does for MAE models).
        trace_source: record which input patches each token holds.
        method: "tome", "random_merge" or "random_drop".
        attention: how merged blocks add the log-size bias, "mask" (SDPA's float mask) or "folded" (no mask,
            so SDPA can use its CUDA flash kernel; see :mod:`tokenmerge.core.attention`).
        seed: the random baselines' seed: None draws from torch's global generator; an int gives every sample its
            own draws (the same in any batch or process; see :class:`tokenmerge.core.ToMeConfig`).
    """
    return patch_model(
        model,
        SpatiotemporalAdapter(),
        r,
        prop_attn=prop_attn,
        trace_source=trace_source,
        method=method,
        merge_scope=merge_scope,
        attention=attention,
        seed=seed,
    )
