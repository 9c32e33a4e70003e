"""Token Merging for timm VisionTransformer models, by composition.

``apply_patch(model, r=16)`` makes a timm ViT merge tokens in every block (Bolya et al., "Token Merging:
Your ViT But Faster", ICLR 2023). Unlike the official release (which targets timm 0.4.12 and swaps
``__class__``), the model keeps its class, parameters and ``state_dict`` keys; the patch sets instance
``forward``/``forward_features`` callables that re-drive the model's own submodules, and
``handle.remove()`` deletes them again. Supported: class token or global average pooling (made
size-weighted), DeiT distillation token, register tokens, LayerScale, q/k-norm, fused attention.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from timm.models.vision_transformer import VisionTransformer
from torch import Tensor, nn

from tokenmerge.core import (
    REDUCTIONS,
    ScheduleSpec,
    TokenState,
    check_block,
    initial_source,
    merging_block_forward,
    resolve_schedule,
    tokens_per_layer,
)

VIT_PARTS = ("patch_embed", "_pos_embed", "blocks", "norm", "num_prefix_tokens", "forward_head")
WEIGHTED_POOLS = ("avg", "avgmax", "max")


@dataclass
class ToMeConfig:
    """Merging settings; may be changed between forward passes (``handle.config.r = 8``).

    Attributes:
        r: schedule spec: int, per-layer list, (r, inflection) ramp or float ratio (see ``tokenmerge.core.schedule``).
        prop_attn: proportional attention (on for supervised models, off for off-the-shelf MAE models).
        trace_source: build the source map (for visualization and unmerging).
        method: "tome", or an ablation baseline "random_merge" / "random_drop".
    """

    r: ScheduleSpec = 0
    prop_attn: bool = True
    trace_source: bool = False
    method: str = "tome"

    def __post_init__(self) -> None:
        if self.method not in REDUCTIONS:
            raise ValueError(f"Unknown method {self.method!r}; choose one of {sorted(REDUCTIONS)}.")


def _check_vit(model: nn.Module) -> None:
    missing = [p for p in VIT_PARTS if not hasattr(model, p)]
    if missing:
        raise TypeError(
            f"apply_patch supports timm VisionTransformer-family models; {type(model).__name__} lacks "
            f"{', '.join(missing)}. (Hierarchical models such as Swin or ConvNeXt have no token sequence to merge.)"
        )
    for i, block in enumerate(model.blocks):
        check_block(block, where=f"blocks[{i}]")
    if getattr(model, "attn_pool", None) is not None:
        raise TypeError(
            "Models with an attention-pooling head (global_pool='map') are not supported yet: the pooling "
            "attention would need proportional attention too. Use a class-token or average-pooled ViT."
        )


def _overrides_head(model: nn.Module) -> bool:
    return type(model).forward_head is not VisionTransformer.forward_head


class ToMeHandle:
    """A live patch on one model. ``remove()`` restores the model; the model's forward uses ``config``."""

    def __init__(self, model: nn.Module, config: ToMeConfig):
        _check_vit(model)
        self.model = model
        self.config = config
        model.forward = _PatchedForward(self)
        model.forward_features = _PatchedForwardFeatures(self)

    @property
    def active(self) -> bool:
        """Whether this handle's patch is the one installed on the model."""
        forward = self.model.__dict__.get("forward")
        return isinstance(forward, _PatchedForward) and forward.handle is self

    @property
    def protected(self) -> int:
        """Tokens that never merge: class, distillation and register tokens."""
        return int(self.model.num_prefix_tokens)

    def schedule(self, num_tokens: int) -> list[int]:
        """Tokens each block removes for an input of ``num_tokens`` tokens (prefix tokens included)."""
        return resolve_schedule(self.config.r, len(self.model.blocks), num_tokens, self.protected)

    def tokens_per_layer(self, num_tokens: int) -> list[int]:
        """Token count entering each block, and after the last."""
        return tokens_per_layer(self.schedule(num_tokens), num_tokens)

    def forward_tokens(self, images: Tensor, trace_source: bool | None = None) -> tuple[Tensor, TokenState]:
        """Images [B, 3, H, W] -> (final normalized tokens [B, N', C], TokenState with sizes/sources).

        ``trace_source`` overrides ``config.trace_source`` for this call.
        """
        model = self.model
        x = model.patch_embed(images)
        x = model._pos_embed(x)
        x = model.patch_drop(x)
        x = model.norm_pre(x)
        state = TokenState(trace_source=self.config.trace_source if trace_source is None else trace_source)
        for block, r in zip(model.blocks, self.schedule(x.shape[1])):
            x = merging_block_forward(
                block, x, state, r, protected=self.protected, prop_attn=self.config.prop_attn, method=self.config.method
            )
        return model.norm(x), state

    def forward_head(self, x: Tensor, state: TokenState, pre_logits: bool = False) -> Tensor:
        """The model's head on merged tokens; average pooling is weighted by token size."""
        model = self.model
        if model.global_pool not in WEIGHTED_POOLS or _overrides_head(model) or state.size is None:
            return model.forward_head(x, pre_logits=pre_logits)
        size = state.size
        if not model.pool_include_prefix:
            x, size = x[:, self.protected :], size[:, self.protected :]
        if model.global_pool == "max":
            pooled = x.amax(1)
        else:
            pooled = (x * size).sum(1) / size.sum(1)
            if model.global_pool == "avgmax":
                pooled = 0.5 * (x.amax(1) + pooled)
        pooled = model.head_drop(model.fc_norm(pooled))
        return pooled if pre_logits else model.head(pooled)

    def remove(self) -> None:
        """Restore the model's own forward (a no-op if this patch was already removed or replaced)."""
        if self.active:
            del self.model.forward
            del self.model.forward_features

    def __repr__(self) -> str:
        return f"ToMeHandle({type(self.model).__name__}, {self.config}, active={self.active})"


@dataclass(eq=False)
class _PatchedForward:
    """Instance-level ``model.forward`` while patched (a picklable callable, not a closure)."""

    handle: ToMeHandle = field(repr=False)

    def __call__(self, x: Tensor, attn_mask: Tensor | None = None, is_causal: bool = False) -> Tensor:
        if attn_mask is not None or is_causal:
            raise ValueError("Attention masks cannot be combined with token merging; call handle.remove() first.")
        tokens, state = self.handle.forward_tokens(x)
        return self.handle.forward_head(tokens, state)


@dataclass(eq=False)
class _PatchedForwardFeatures:
    """Instance-level ``model.forward_features``: returns the merged tokens [B, N', C]."""

    handle: ToMeHandle = field(repr=False)

    def __call__(self, x: Tensor) -> Tensor:
        return self.handle.forward_tokens(x)[0]


def apply_patch(
    model: nn.Module,
    r: ScheduleSpec = 0,
    *,
    prop_attn: bool = True,
    trace_source: bool = False,
    method: str = "tome",
) -> ToMeHandle:
    """Make a timm VisionTransformer merge tokens; returns a handle (``handle.remove()`` undoes it).

    Applying to an already patched model replaces the previous patch (the old handle becomes inactive).

    Args:
        model: a timm ``VisionTransformer`` (or subclass such as DeiT's distilled model).
        r: tokens merged per block: int, per-layer list, (r, inflection) ramp or float ratio.
        prop_attn: proportional attention; True for supervised models, False for off-the-shelf MAE models.
        trace_source: record which input patches each token holds (``handle.forward_tokens`` returns it).
        method: "tome" (bipartite soft matching) or the baselines "random_merge", "random_drop".

    Example:
        >>> model = timm.create_model("vit_small_patch16_224")
        >>> handle = apply_patch(model, r=13)
        >>> logits = model(torch.randn(1, 3, 224, 224))
        >>> handle.remove()
    """
    previous = model.__dict__.get("forward")
    if isinstance(previous, _PatchedForward):
        previous.handle.remove()
    return ToMeHandle(model, ToMeConfig(r=r, prop_attn=prop_attn, trace_source=trace_source, method=method))


@torch.no_grad()
def merged_source(handle: ToMeHandle, images: Tensor) -> Tensor:
    """Source map [B, N', N] of one forward pass: which input tokens (prefix tokens first) each final token holds."""
    tokens, state = handle.forward_tokens(images, trace_source=True)
    if state.source is None:  # nothing merged
        return initial_source(tokens.shape[1], tokens.shape[0], device=tokens.device)
    return state.source
