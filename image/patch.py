"""Token Merging for timm VisionTransformer models: the image adapter.

``apply_patch(model, r=16)`` makes a timm ViT merge tokens in every block (Bolya et al., "Token Merging:
Your ViT But Faster", ICLR 2023). The machinery (handle, schedules, block loop, size-weighted pooling) is
``tokenmerge.core.adapter``; this module only says how a timm ViT embeds, which tokens are protected and
how it pools. Unlike the official release (which targets timm 0.4.12 and swaps ``__class__``), the model
keeps its class, parameters and ``state_dict`` keys. Supported: class token or global average pooling
(made size-weighted), DeiT distillation token, register tokens, LayerScale, q/k-norm, fused attention.
"""

from __future__ import annotations

from timm.models.vision_transformer import VisionTransformer
from torch import Tensor, nn

from tokenmerge.core import ModelAdapter, ScheduleSpec, TokenState, ToMeHandle, patch_model, size_weighted_pool
from tokenmerge.core.pooling import POOLS

VIT_PARTS = ("patch_embed", "_pos_embed", "blocks", "norm", "num_prefix_tokens", "forward_head")


class TimmViTAdapter(ModelAdapter):
    """timm ``VisionTransformer`` and subclasses (DeiT distilled, register tokens, LayerScale, q/k-norm)."""

    def check(self, model: nn.Module) -> None:
        missing = [p for p in VIT_PARTS if not hasattr(model, p)]
        if missing:
            raise TypeError(
                f"apply_patch supports timm VisionTransformer-family models; {type(model).__name__} lacks "
                f"{', '.join(missing)}. (Hierarchical models such as Swin or ConvNeXt have no token sequence to "
                "merge.)"
            )
        super().check(model)
        if getattr(model, "attn_pool", None) is not None:
            raise TypeError(
                "Models with an attention-pooling head (global_pool='map') are not supported yet: the pooling "
                "attention would need proportional attention too. Use a class-token or average-pooled ViT."
            )

    def protected(self, model: nn.Module) -> int:
        return int(model.num_prefix_tokens)

    def embed(self, model: nn.Module, inputs: Tensor) -> Tensor:
        """Images [B, 3, H, W] -> [B, prefix + patches, C]."""
        x = model._pos_embed(model.patch_embed(inputs))
        return model.norm_pre(model.patch_drop(x))

    def head_needs_sizes(self, model: nn.Module) -> bool:
        """Average/max pooling with timm's own head needs sizes; a class token (or a model's own head) does not."""
        return model.global_pool in POOLS and type(model).forward_head is VisionTransformer.forward_head

    def head(self, model: nn.Module, x: Tensor, state: TokenState, pre_logits: bool = False) -> Tensor:
        """timm's head, with average pooling weighted by token size (a model's own ``forward_head`` is kept)."""
        if not self.head_needs_sizes(model) or state.size is None:
            return type(model).forward_head(model, x, pre_logits=pre_logits)  # the class's, not the patched one
        size = state.size
        if not model.pool_include_prefix:
            x, size = x[:, self.protected(model) :], size[:, self.protected(model) :]
        pooled = model.head_drop(model.fc_norm(size_weighted_pool(x, size, model.global_pool)))
        return pooled if pre_logits else model.head(pooled)


def apply_patch(
    model: nn.Module,
    r: ScheduleSpec = 0,
    *,
    prop_attn: bool = True,
    trace_source: bool = False,
    method: str = "tome",
    attention: str = "mask",
    seed: int | None = None,
) -> ToMeHandle:
    """Make a timm VisionTransformer merge tokens; returns a handle (``handle.remove()`` undoes it).

    Every setting is checked here, before any forward pass. Applying to an already patched model replaces
    the previous patch (the old handle becomes inactive).

    Args:
        model: a timm ``VisionTransformer`` (or subclass such as DeiT's distilled model).
        r: tokens merged per block: int >= 0, per-layer list, (r, inflection) ramp or float ratio in [0, 0.5].
        prop_attn: proportional attention; True for supervised models, False for off-the-shelf MAE models.
        trace_source: record which input patches each token holds (``handle.forward_tokens`` returns it).
        method: "tome" (bipartite soft matching) or the baselines "random_merge", "random_drop".
        attention: how merged blocks add the log-size bias, "mask" (SDPA's float mask) or "folded" (no mask,
            so SDPA can use its CUDA flash kernel; see :mod:`tokenmerge.core.attention`).
        seed: the random baselines' seed: None draws from torch's global generator; an int gives every sample its
            own draws (the same in any batch or process; see :class:`tokenmerge.core.ToMeConfig`).

    Example:
        >>> model = timm.create_model("vit_small_patch16_224")
        >>> handle = apply_patch(model, r=13)
        >>> logits = model(torch.randn(1, 3, 224, 224))
        >>> handle.remove()
    """
    return patch_model(
        model,
        TimmViTAdapter(),
        r,
        prop_attn=prop_attn,
        trace_source=trace_source,
        method=method,
        attention=attention,
        seed=seed,
    )


def merged_source(handle: ToMeHandle, images: Tensor) -> Tensor:
    """Source map [B, N', N] of one forward pass: which input tokens (prefix tokens first) each final token holds."""
    return handle.source_map(images)
