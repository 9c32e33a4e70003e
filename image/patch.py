"""Token Merging for timm VisionTransformer models: the image modality's ``apply_patch``.

``apply_patch(model, r=16)`` makes a timm ViT merge tokens in every block (Bolya et al., "Token Merging:
Your ViT But Faster", ICLR 2023), with the timm adapter (:class:`tokenmerge.adapters.TimmViTAdapter`, re-exported
here) over the core's machinery.
"""

from __future__ import annotations

from timm.models.eva import Eva
from torch import Tensor, nn

from tokenmerge.adapters import EvaAdapter, TimmViTAdapter
from tokenmerge.core import ScheduleSpec, ToMeHandle, patch_model
from tokenmerge.core.positions import POSITION_RULES

__all__ = ["EvaAdapter", "TimmViTAdapter", "apply_patch", "merged_source"]


def apply_patch(
    model: nn.Module,
    r: ScheduleSpec = 0,
    *,
    prop_attn: bool = True,
    trace_source: bool = False,
    method: str = "tome",
    attention: str = "mask",
    seed: int | None = None,
    position_rule: str = POSITION_RULES[0],
) -> ToMeHandle:
    """Make a timm VisionTransformer merge tokens; returns a handle (``handle.remove()`` undoes it).

    Every setting is checked here, before any forward pass. Applying to an already patched model replaces
    the previous patch (the old handle becomes inactive).

    Args:
        model: a timm ``VisionTransformer`` (or subclass such as DeiT's distilled model), or a timm ``Eva`` (EVA-02,
            rotary-position ``vit_*_rope*``; :class:`~tokenmerge.adapters.EvaAdapter`).
        r: tokens merged per block: int >= 0, per-layer list, (r, inflection) ramp or float ratio in [0, 0.5].
        prop_attn: proportional attention; True for supervised models, False for off-the-shelf MAE models.
        trace_source: record which input patches each token holds (``handle.forward_tokens`` returns it).
        method: "tome" (bipartite soft matching) or the baselines "random_merge", "random_drop".
        attention: how merged blocks add the log-size bias, "mask" (SDPA's float mask) or "folded" (no mask,
            so SDPA can use its CUDA flash kernel; see :mod:`tokenmerge.core.attention`).
        seed: the random baselines' seed: None draws from torch's global generator; an int gives every sample its
            own draws (the same in any batch or process; see :class:`tokenmerge.core.ToMeConfig`).
        position_rule: for rotary-position models, a merged token's position: "destination" (the token it merged
            into) or "mean" (size-weighted mean of its members'; see :mod:`tokenmerge.core.positions`).

    Example:
        >>> model = timm.create_model("vit_small_patch16_224")
        >>> handle = apply_patch(model, r=13)
        >>> logits = model(torch.randn(1, 3, 224, 224))
        >>> handle.remove()
    """
    return patch_model(
        model,
        EvaAdapter() if isinstance(model, Eva) else TimmViTAdapter(),
        r,
        prop_attn=prop_attn,
        trace_source=trace_source,
        method=method,
        attention=attention,
        seed=seed,
        position_rule=position_rule,
    )


def merged_source(handle: ToMeHandle, images: Tensor) -> Tensor:
    """Source map [B, N', N] of one forward pass: which input tokens (prefix tokens first) each final token holds."""
    return handle.source_map(images)
