"""Merged groups drawn across the frames of a clip: one colour per group in every frame it spans.

Row 1 shows the frames as the model sees them, row 2 the groups of input patches that ended in the same
token after the last block, each filled with its mean colour over all the frames it covers and outlined.
In the "spacetime" scope (the paper's) a group can span frames: a still background becomes one colour across
the clip while a moving object keeps tokens of its own. In the "frame" scope every group stays in one
tubelet time slice.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from tokenmerge.core import ScheduleSpec, temporary_patch
from tokenmerge.core.visualize import group_map, render_groups

from .patch import SpatiotemporalAdapter


def clip_pixels(clip: Tensor, mean, std) -> np.ndarray:
    """A normalized model input [3, T, H, W] -> uint8 frames [T, H, W, 3]."""
    mean = torch.as_tensor(mean, dtype=clip.dtype).view(-1, 1, 1, 1)
    std = torch.as_tensor(std, dtype=clip.dtype).view(-1, 1, 1, 1)
    return ((clip.cpu() * std + mean).clamp(0, 1) * 255).round().byte().permute(1, 2, 3, 0).numpy()


@torch.no_grad()
def visualize_clip_merges(
    model: nn.Module,
    clip: Tensor,
    r: ScheduleSpec = 8,
    *,
    merge_scope: str = "spacetime",
    prop_attn: bool = True,
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    frame_height: int = 96,
) -> Image.Image:
    """A frame grid of a clip and its merged groups.

    Args:
        model: a :class:`~tokenmerge.video.SpatiotemporalViT` (patched for the call; a patch it had is restored).
        clip: [3, T, H, W] the model's input (normalized with ``mean`` / ``std``).
        r: schedule spec.
        merge_scope: "spacetime" or "frame".
        prop_attn: proportional attention.
        mean, std: the normalization of ``clip``, to show its pixels.
        frame_height: height of every frame in the picture (nearest-neighbour scaling).

    Returns:
        An RGB image: T frames wide, two rows (frames, merged groups).
    """
    pixels = clip_pixels(clip, mean, std)
    with temporary_patch(model, SpatiotemporalAdapter(), r, merge_scope=merge_scope, prop_attn=prop_attn) as handle:
        source = handle.source_map(clip[None].to(next(model.parameters()).device))[0].cpu()
        prefix = handle.protected
    slices, rows, cols = model.patch_embed.grid_size
    groups = group_map(source, prefix, (slices, rows, cols)).repeat(pixels.shape[0] // slices, axis=0)
    factor = max(1, round(frame_height / pixels.shape[1]))
    pixels = pixels.repeat(factor, axis=1).repeat(factor, axis=2)  # scale first, so borders stay 1 pixel wide
    merged = render_groups(pixels, groups)
    grid = np.concatenate([np.concatenate(list(pixels), axis=1), np.concatenate(list(merged), axis=1)], axis=0)
    return Image.fromarray(grid)
