"""Drawing merged groups as in the ToMe paper's figures: every group of input patches in one colour.

From a source map (which input patches each final token holds), each group is filled with the mean colour
of all its pixels and outlined. Works on one image or on the frames of a clip: a group that spans several
frames gets the same colour in every frame it covers, so tokens merged over time are visible. numpy only.
Also what every modality's ``visualize_merges`` shares: captions, a grid of pictures (``merge_gallery``) and the
warning of a renamed function or keyword.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from tokenmerge.core import ScheduleSpec


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
        groups: [rows, cols] or [F, rows, cols] group ids, one grid per frame; patch cells cover the pixels in
            proportion, so the picture can be drawn at any size (the borders stay 1 pixel wide).
        border: draw 1-pixel group boundaries.

    Returns:
        uint8 array of the images' shape.
    """
    single = images.ndim == 3
    images, groups = (images[None], groups[None]) if single else (images, groups)
    frames, height, width, _ = images.shape
    rows, cols = groups.shape[1:]
    row_of, col_of = np.arange(height) * rows // height, np.arange(width) * cols // width
    ids = groups[:, row_of][:, :, col_of]
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


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


def label_panels(
    panels: list[Image.Image], captions: list[str], title: str | None = None, font_size: int = 13
) -> Image.Image:
    """Panels side by side, each with its caption above it (wrapped to the panel's width), and a title on top.

    Args:
        panels: images of equal height.
        captions: one text per panel.
        title: a line over all panels (e.g. the model's name), or None.
        font_size: text height in pixels (Pillow's default font).

    Returns:
        An RGB image as wide as the panels together; its lower part is the panels, unscaled.
    """
    if len(panels) != len(captions):
        raise ValueError(f"need one caption per panel; got {len(captions)} captions for {len(panels)} panels.")
    font, pad = _font(font_size), 4
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    width = sum(p.width for p in panels)
    blocks = [_wrap(measure, text, font, p.width - 2 * pad) for p, text in zip(panels, captions)]
    titled = _wrap(measure, title, font, width - 2 * pad) if title else []
    line = font_size + 3
    top = len(titled) * line + (pad if titled else 0)
    header = top + max(len(b) for b in blocks) * line + pad
    out = Image.new("RGB", (width, header + max(p.height for p in panels)), "white")
    draw = ImageDraw.Draw(out)
    for i, text in enumerate(titled):
        draw.text((pad, pad + i * line), text, fill="black", font=font)
    x = 0
    for panel, lines in zip(panels, blocks):
        for i, text in enumerate(lines):
            draw.text((x + pad, top + pad // 2 + i * line), text, fill=(40, 40, 40), font=font)
        out.paste(panel.convert("RGB"), (x, header))
        x += panel.width
    return out


def reduction_label(method: str, r: ScheduleSpec) -> str:
    """How a picture names its reduction: "ToMe r=8", "ToMe r=[8, -1.0]", "random drop r=8"."""
    what = "ToMe" if method == "tome" else method.replace("_", " ")
    return f"{what} r={list(r) if isinstance(r, tuple) else r}"


def merge_gallery(pictures: Sequence[Image.Image], columns: int = 1, gap: int = 0) -> Image.Image:
    """Pictures in a grid on white, row by row, ``columns`` to a row and ``gap`` pixels between them.

    Each column is as wide as its widest picture and each row as high as its highest; a picture sits at the top
    left of its cell, unscaled (a demo's ``merges.png``: one merge picture per sample, or per sample and setting).

    Returns:
        An RGB image.
    """
    if not pictures or columns < 1:
        raise ValueError(f"need at least one picture and one column; got {len(pictures)} and {columns}.")
    rows = [list(pictures[i : i + columns]) for i in range(0, len(pictures), columns)]
    widths = [max(row[c].width for row in rows if c < len(row)) for c in range(len(rows[0]))]
    heights = [max(picture.height for picture in row) for row in rows]
    size = (sum(widths) + gap * (len(widths) - 1), sum(heights) + gap * (len(heights) - 1))
    out = Image.new("RGB", size, "white")
    top = 0
    for row, height in zip(rows, heights):
        left = 0
        for picture, width in zip(row, widths):
            out.paste(picture.convert("RGB"), (left, top))
            left += width + gap
        top += height + gap
    return out


def warn_renamed(old: str, new: str) -> None:
    """A :class:`DeprecationWarning` at the caller of the function that calls this: ``old`` is now ``new``.

    Args:
        old: the deprecated spelling, e.g. "visualize_clip_merges(...)" or "classes=".
        new: the spelling to use instead.
    """
    message = f"{old} is deprecated and will be removed in the next release; use {new} instead."
    warnings.warn(message, DeprecationWarning, stacklevel=3)
