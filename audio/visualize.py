"""Merged groups drawn over a spectrogram: time on x, mel bins on y (low frequencies at the bottom).

The top panel is the log-mel spectrogram as the model sees it (colour-mapped), the bottom panel the groups of
patches that ended in the same token after the last block, each filled with its mean colour and outlined, as
in the ToMe paper's figures. A caption names the schedule, the tokens left and the predicted class.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib import colormaps
from PIL import Image, ImageDraw
from torch import Tensor, nn

from tokenmerge.core import ScheduleSpec, temporary_patch
from tokenmerge.core.visualize import group_map, render_groups

from .patch import SpectrogramAdapter


def spectrogram_pixels(features: Tensor, colormap: str = "magma") -> np.ndarray:
    """Features [1, T, F] -> uint8 RGB [F, T, 3]: time on x, frequency upwards, min-max scaled and colour-mapped."""
    values = features[0].float().cpu().numpy().T[::-1]  # [F, T], highest bin first
    span = values.max() - values.min()
    scaled = (values - values.min()) / (span if span > 0 else 1.0)
    return (colormaps[colormap](scaled)[..., :3] * 255).round().astype(np.uint8)


@torch.no_grad()
def visualize_spectrogram_merges(
    model: nn.Module,
    features: Tensor,
    r: ScheduleSpec = 4,
    *,
    prop_attn: bool = True,
    classes: list[str] | None = None,
    scale: int = 3,
) -> Image.Image:
    """A spectrogram above its merged groups.

    Args:
        model: a :class:`~tokenmerge.audio.SpectrogramViT` (patched for the call; a patch it had is restored).
        features: [1, T, F] the model's input (e.g. from :func:`tokenmerge.audio.fbank`).
        r: schedule spec.
        prop_attn: proportional attention.
        classes: class names, to caption the prediction (None: the class index).
        scale: pixels per frame and per mel bin (nearest-neighbour scaling).

    Returns:
        An RGB image: two panels of T x F cells (times ``scale``) and a caption.
    """
    device = next(model.parameters()).device
    with temporary_patch(model, SpectrogramAdapter(), r, prop_attn=prop_attn) as handle:
        logits, source = handle.traced_forward(features[None].to(device))
        source, predicted = source[0].cpu(), int(logits.argmax(-1))
    after, before = source.shape  # final tokens, input tokens
    pixels = spectrogram_pixels(features).repeat(scale, axis=0).repeat(scale, axis=1)  # borders stay 1 pixel wide
    groups = group_map(source, handle.protected, tuple(model.patch_embed.grid_size)).T[::-1]  # like the pixels
    gap = np.full((2 * scale, pixels.shape[1], 3), 255, np.uint8)
    picture = Image.fromarray(np.concatenate([pixels, gap, render_groups(pixels, groups)]))
    name = classes[predicted] if classes else str(predicted)
    caption = f"r={r}: {before} -> {after} tokens, predicted '{name}'  (top: spectrogram, bottom: merged groups)"
    out = Image.new("RGB", (picture.width, picture.height + 16), "white")
    out.paste(picture, (0, 16))
    ImageDraw.Draw(out).text((2, 2), caption, fill="black")
    return out
