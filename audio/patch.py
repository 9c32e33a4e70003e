"""Token Merging for spectrogram ViTs: the audio adapter.

A SpectrogramViT is a timm VisionTransformer, so the image adapter's machinery applies unchanged (class token
protected, AudioMAE's mean-pooled head made size-weighted); this adapter adds the input check that names the
expected spectrogram shape. Tokens merge across time and frequency alike, as in the ToMe paper's audio model.
"""

from __future__ import annotations

from torch import Tensor, nn

from tokenmerge.adapters import TimmViTAdapter
from tokenmerge.core import ScheduleSpec, ToMeHandle, patch_model


class SpectrogramAdapter(TimmViTAdapter):
    """:class:`~tokenmerge.audio.SpectrogramViT` (and any timm ViT fed with spectrograms)."""

    def embed(self, model: nn.Module, inputs: Tensor) -> Tensor:
        """Spectrograms [B, 1, T, F] -> [B, 1 + N, C] (N = T/16 * F/16, time-major)."""
        if hasattr(model, "check_input"):
            model.check_input(inputs)
        return super().embed(model, inputs)


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
    """Make a SpectrogramViT merge tokens; returns the shared handle (``handle.remove()`` undoes it).

    Args:
        model: a :class:`~tokenmerge.audio.SpectrogramViT`.
        r: tokens each block removes: int, per-layer list, (r, inflection) ramp or float ratio in [0, 0.5].
        prop_attn: proportional attention (on for models fine-tuned with merging; off for off-the-shelf MAE models
            evaluated without fine-tuning, as the paper does).
        trace_source: record which input patches each token holds (for visualization).
        method: "tome", "random_merge" or "random_drop".
        attention: how merged blocks add the log-size bias, "mask" (SDPA's float mask) or "folded" (no mask,
            so SDPA can use its CUDA flash kernel; see :mod:`tokenmerge.core.attention`).
        seed: the random baselines' seed: None draws from torch's global generator; an int gives every sample its
            own draws (the same in any batch or process; see :class:`tokenmerge.core.ToMeConfig`).

    Example:
        >>> model = tokenmerge.audio.create_model("vit_base_patch16")
        >>> handle = apply_patch(model, r=20)       # 512 tokens -> 272 over 12 blocks
        >>> logits = model(torch.randn(2, 1, 1024, 128))
    """
    return patch_model(
        model,
        SpectrogramAdapter(),
        r,
        prop_attn=prop_attn,
        trace_source=trace_source,
        method=method,
        attention=attention,
        seed=seed,
    )
