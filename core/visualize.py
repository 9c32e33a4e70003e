"""Drawing merged groups as in the ToMe paper's figures: every group of input patches in one colour.

From a source map (which input patches each final token holds), each group is filled with the mean colour
of all its pixels and outlined. Works on one image or on the frames of a clip: a group that spans several
frames gets the same colour in every frame it covers, so tokens merged over time are visible. numpy only.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor


def group_map(source: Tensor, num_prefix: int, grid: tuple[int, ...]) -> np.ndarray:
    """Group index of every input patch.

    Args:
        source: [N', N] source map of one sample (prefix tokens first along both axes).
        num_prefix: class/distillation/register tokens to leave out.
        grid: patch grid, e.g. (rows, cols) for an image or (slices, rows, cols) for a clip, time-major;
            its product must be N - num_prefix.

    Returns:
        Integer array of shape ``grid``: the final token that holds each patch.
    """
    patches = source[:, num_prefix:]
    if patches.shape[1] != int(np.prod(grid)):
        raise ValueError(f"source covers {patches.shape[1]} patches, but the grid {grid} has {int(np.prod(grid))}.")
    return patches.argmax(0).reshape(grid).cpu().numpy()


def render_groups(images: np.ndarray, groups: np.ndarray, border: bool = True) -> np.ndarray:
    """Fill each group with the mean colour of its pixels over all frames, outlined in white.

    Args:
        images: [H, W, 3] or [F, H, W, 3] uint8 pixels.
        groups: [rows, cols] or [F, rows, cols] group ids, one grid per frame (patch cells cover the pixels
            evenly; a remainder at the right/bottom edge joins the last cell).
        border: draw 1-pixel group boundaries.

    Returns:
        uint8 array of the images' shape.
    """
    single = images.ndim == 3
    images, groups = (images[None], groups[None]) if single else (images, groups)
    frames, height, width, _ = images.shape
    rows, cols = groups.shape[1:]
    ids = groups.repeat(height // rows, 1).repeat(width // cols, 2)
    ids = np.pad(ids, ((0, 0), (0, height - ids.shape[1]), (0, width - ids.shape[2])), mode="edge")
    flat_ids, flat_pixels = ids.reshape(-1), images.reshape(-1, 3).astype(np.float64)
    count = int(ids.max()) + 1
    counts = np.bincount(flat_ids, minlength=count)[:, None]
    sums = np.stack([np.bincount(flat_ids, weights=flat_pixels[:, c], minlength=count) for c in range(3)], 1)
    out = (sums / np.maximum(counts, 1))[flat_ids].reshape(images.shape)
    if border:
        edge = np.zeros(ids.shape, dtype=bool)
        edge[:, :-1] |= ids[:, :-1] != ids[:, 1:]
        edge[:, :, :-1] |= ids[:, :, :-1] != ids[:, :, 1:]
        out[edge] = 255.0
    out = out.round().clip(0, 255).astype(np.uint8)
    return out[0] if single else out
