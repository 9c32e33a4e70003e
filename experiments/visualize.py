"""Drawing merged groups as in the ToMe paper's figures: every group of input patches in one colour.

From a source map (which input patches each final token holds), each group is filled with the mean colour
of all its pixels and outlined. Works on one image or on the frames of a clip: a group that spans several
frames gets the same colour in every frame it covers, so tokens merged over time are visible, and chosen groups
can be outlined thicker in a highlight colour. numpy and Pillow only.
Also what every modality's ``visualize_merges`` shares: the caption font (:data:`CAPTION_SIZE` pixels), captions
(``label_panels``), a strip of labels over spans of a picture (``text_band``), axes with tick labels
(``draw_axes``, ``nice_ticks``), a grid of pictures (``merge_gallery``) and the warning of a renamed function or
keyword.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from tokenmerge.core import ScheduleSpec

#: Height in pixels of every caption, label and tick label (Pillow's default font, scalable since Pillow 10.1).
CAPTION_SIZE = 16
#: The colour of highlighted group outlines (e.g. a clip's groups that span several time slices): cyan.
HIGHLIGHT = (0, 220, 255)
#: Grey of secondary text (captions under a title, tick marks).
TEXT_GREY = (40, 40, 40)


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


def _pixel_ids(groups: np.ndarray, height: int, width: int) -> np.ndarray:
    """Group ids [F, rows, cols] -> [F, height, width]: each patch cell covers the pixels in proportion."""
    rows, cols = groups.shape[1:]
    return groups[:, np.arange(height) * rows // height][:, :, np.arange(width) * cols // width]


def _inner_outline(ids: np.ndarray, width: int) -> np.ndarray:
    """Pixels [F, H, W] within ``width`` pixels of another group or of the frame's edge, inside their own group."""
    inside = np.ones(ids.shape, dtype=bool)
    for _ in range(width):
        kept = inside.copy()
        kept[:, 0], kept[:, -1], kept[:, :, 0], kept[:, :, -1] = False, False, False, False
        kept[:, 1:] &= inside[:, :-1] & (ids[:, 1:] == ids[:, :-1])
        kept[:, :-1] &= inside[:, 1:] & (ids[:, :-1] == ids[:, 1:])
        kept[:, :, 1:] &= inside[:, :, :-1] & (ids[:, :, 1:] == ids[:, :, :-1])
        kept[:, :, :-1] &= inside[:, :, 1:] & (ids[:, :, :-1] == ids[:, :, 1:])
        inside = kept
    return ~inside


def render_groups(
    images: np.ndarray,
    groups: np.ndarray,
    border: bool = True,
    highlight: np.ndarray | None = None,
    highlight_width: int = 2,
) -> np.ndarray:
    """Fill each group with the mean colour of its pixels over all frames, outlined in white.

    Args:
        images: [H, W, 3] or [F, H, W, 3] uint8 pixels.
        groups: [rows, cols] or [F, rows, cols] group ids, one grid per frame; patch cells cover the pixels in
            proportion, so the picture can be drawn at any size (the borders stay 1 pixel wide).
        border: draw 1-pixel group boundaries.
        highlight: [K] ids of groups to outline in :data:`HIGHLIGHT` instead, ``highlight_width`` pixels wide on
            the inside of each group's edge in every frame (None or empty: none).
        highlight_width: pixels of the highlighted outline.

    Returns:
        uint8 array of the images' shape.
    """
    single = images.ndim == 3
    images, groups = (images[None], groups[None]) if single else (images, groups)
    ids = _pixel_ids(groups, *images.shape[1:3])
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
    if highlight is not None and len(highlight):
        out[np.isin(ids, highlight) & _inner_outline(ids, highlight_width)] = HIGHLIGHT
    out = out.round().clip(0, 255).astype(np.uint8)
    return out[0] if single else out


def font(size: int = CAPTION_SIZE) -> ImageFont.FreeTypeFont:
    """Pillow's default font, ``size`` pixels high."""
    return ImageFont.load_default(size=size)


def _wrap(draw: ImageDraw.ImageDraw, text: str, text_font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """The lines of ``text`` wrapped to ``width`` pixels; a newline in ``text`` always starts a line."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        start = len(lines)
        for word in paragraph.split():
            if len(lines) > start and draw.textlength(f"{lines[-1]} {word}", font=text_font) <= width:
                lines[-1] = f"{lines[-1]} {word}"
            else:
                lines.append(word)
    return lines or [""]


def label_panels(
    panels: list[Image.Image], captions: list[str], title: str | None = None, font_size: int = CAPTION_SIZE
) -> Image.Image:
    """Panels side by side, each with its caption above it (wrapped to the panel's width), and a title on top.

    Args:
        panels: images of equal height.
        captions: one text per panel (a newline starts a new line).
        title: a line over all panels (e.g. the model's name), or None.
        font_size: text height in pixels (Pillow's default font).

    Returns:
        An RGB image as wide as the panels together; its lower part is the panels, unscaled.
    """
    if len(panels) != len(captions):
        raise ValueError(f"need one caption per panel; got {len(captions)} captions for {len(panels)} panels.")
    text_font, pad = font(font_size), 4
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    width = sum(p.width for p in panels)
    blocks = [_wrap(measure, text, text_font, p.width - 2 * pad) for p, text in zip(panels, captions)]
    titled = _wrap(measure, title, text_font, width - 2 * pad) if title else []
    line = font_size + 4
    top = len(titled) * line + (pad if titled else 0)
    header = top + max(len(b) for b in blocks) * line + pad
    out = Image.new("RGB", (width, header + max(p.height for p in panels)), "white")
    draw = ImageDraw.Draw(out)
    for i, text in enumerate(titled):
        draw.text((pad, pad + i * line), text, fill="black", font=text_font)
    x = 0
    for panel, lines in zip(panels, blocks):
        for i, text in enumerate(lines):
            draw.text((x + pad, top + pad // 2 + i * line), text, fill=TEXT_GREY, font=text_font)
        out.paste(panel.convert("RGB"), (x, header))
        x += panel.width
    return out


def text_band(spans: Sequence[tuple[str, int]], font_size: int = CAPTION_SIZE, rule: bool = False) -> Image.Image:
    """A white strip of labels, each centred over its span, e.g. "frame 0" over each frame of a clip.

    The font shrinks below ``font_size`` where a label would not fit its span.

    Args:
        spans: (text, width in pixels) from left to right.
        font_size: text height in pixels at most.
        rule: draw a line under each label, as wide as its span less a small gap at each end (shows which spans
            a wide label covers, e.g. the two frames of a time slice).

    Returns:
        An RGB image, as wide as the spans together and ``font_size`` plus a few pixels high.
    """
    pad, largest = 4, font(font_size)
    fits = [(width - 2 * pad) / max(largest.getlength(text), 1) for text, width in spans]
    size = max(6, min(font_size, math.floor(font_size * min(fits))))
    text_font = font(size)
    out = Image.new("RGB", (sum(width for _, width in spans), font_size + 2 * pad + (3 if rule else 0)), "white")
    draw, left = ImageDraw.Draw(out), 0
    for text, width in spans:
        draw.text((left + width / 2, pad + font_size / 2), text, fill="black", font=text_font, anchor="mm")
        if rule:
            draw.line([(left + pad, out.height - 3), (left + width - 1 - pad, out.height - 3)], fill=TEXT_GREY, width=2)
        left += width
    return out


def nice_ticks(stop: float, max_ticks: int) -> list[float]:
    """0, step, 2 step, ... up to ``stop`` (> 0): at most ``max_ticks`` values, step 1, 2 or 5 times a power of 10."""
    power = 10.0 ** math.floor(math.log10(stop / max(max_ticks, 1)))  # smaller steps give too many ticks
    steps = (m * power * scale for scale in (1, 10) for m in (1, 2, 5))
    step = next(step for step in steps if math.floor(stop / step + 1e-9) < max(max_ticks, 1))
    return [round(i * step, 10) for i in range(math.floor(stop / step + 1e-9) + 1)]  # 0.3, not 0.30000000000000004


def _rotated_text(text: str, text_font: ImageFont.FreeTypeFont) -> Image.Image:
    """``text`` in black on white, turned to read upwards (a y-axis title)."""
    right, bottom = text_font.getbbox(text)[2:]
    image = Image.new("RGB", (right + 2, bottom + 2), "white")
    ImageDraw.Draw(image).text((1, 1), text, fill="black", font=text_font)
    return image.rotate(90, expand=True)


def draw_axes(
    picture: Image.Image,
    x_ticks: Sequence[tuple[float, str]],
    y_ticks: Sequence[tuple[float, str]],
    x_title: str = "",
    y_titles: Sequence[tuple[float, str]] = (),
    minor_x: Sequence[float] = (),
    minor_y: Sequence[float] = (),
    font_size: int = CAPTION_SIZE,
) -> Image.Image:
    """``picture`` on white with an x axis under it and a y axis on its left: tick marks, tick labels, titles.

    Positions are in pixels of ``picture`` (x from its left edge, y from its top edge).

    Args:
        picture: the image to frame, pasted unscaled.
        x_ticks, y_ticks: (position, label) of each labelled tick.
        x_title: a line centred under the x tick labels ("" for none).
        y_titles: (centre position, text) of each title left of the y tick labels, reading upwards (e.g. one
            per panel of a stacked picture).
        minor_x, minor_y: positions of short unlabelled ticks (e.g. the edges of patches).
        font_size: text height in pixels.

    Returns:
        An RGB image, ``picture`` plus margins on every side (left and bottom hold the axes).
    """
    text_font, pad, tick = font(font_size), 4, 6
    label_width = max([text_font.getlength(label) for _, label in y_ticks] or [0])
    title_width = font_size + 2 * pad if y_titles else 0
    left = math.ceil(title_width + label_width + pad + tick) + 1
    overhang = max([text_font.getlength(label) / 2 for _, label in x_ticks] or [0])
    right, top = math.ceil(overhang) + pad, font_size // 2 + pad
    bottom = tick + pad + font_size + pad + (font_size + pad if x_title else 0)
    out = Image.new("RGB", (left + picture.width + right, top + picture.height + bottom), "white")
    out.paste(picture.convert("RGB"), (left, top))
    draw, base = ImageDraw.Draw(out), top + picture.height
    draw.line([(left - 1, top), (left - 1, base)], fill="black")
    draw.line([(left - 1, base), (left + picture.width - 1, base)], fill="black")
    for x in minor_x:
        draw.line([(left + x, base), (left + x, base + tick // 2)], fill=TEXT_GREY)
    for y in minor_y:
        draw.line([(left - 1 - tick // 2, top + y), (left - 1, top + y)], fill=TEXT_GREY)
    for x, label in x_ticks:
        draw.line([(left + x, base), (left + x, base + tick)], fill="black")
        draw.text((left + x, base + tick + pad), label, fill="black", font=text_font, anchor="mt")
    for y, label in y_ticks:
        draw.line([(left - 1 - tick, top + y), (left - 1, top + y)], fill="black")
        draw.text((left - 1 - tick - pad, top + y), label, fill="black", font=text_font, anchor="rm")
    if x_title:
        draw.text(
            (left + picture.width / 2, base + tick + 2 * pad + font_size),
            x_title,
            fill="black",
            font=text_font,
            anchor="mt",
        )
    for y, text in y_titles:
        title = _rotated_text(text, text_font)
        out.paste(title, (pad, round(top + y - title.height / 2)))
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
