"""Merged groups drawn across the frames of a clip: one colour per group in every frame it spans.

Row 1 shows the frames as the model sees them, row 2 the groups of input patches that ended in the same
token after the last block, each filled with its mean colour over all the frames it covers and outlined.
Labels above the rows name every frame and every time slice: the model cuts the clip into tubelets of
``t_patch_size`` frames, so the frames of one time slice share their groups by construction, and "spanning
several frames" means spanning several time slices. In the "spacetime" scope (the paper's) a group can span
time slices: a still background becomes one colour across the clip while a moving object keeps tokens of its
own; those groups are outlined in cyan and counted in the caption. In the "frame" scope every group stays in
one time slice, so the count is 0.

    python -m tokenmerge.video.visualize [VIDEO] [--model embedded] [--r 16 | 16,-1 | 0.25] [--scope both]

Without a video file it draws a held-out clip of the embedded moving-objects task (``--clip`` picks which).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from tokenmerge.core import ScheduleSpec, temporary_patch
from tokenmerge.experiments.visualize import (
    group_map,
    label_panels,
    merge_gallery,
    reduction_label,
    render_groups,
    text_band,
    warn_renamed,
)

from .patch import SpatiotemporalAdapter

__all__ = ["clip_pixels", "frame_labels", "spanning_groups", "visualize_clip_merges", "visualize_merges"]


def clip_pixels(clip: Tensor, mean, std) -> np.ndarray:
    """A normalized model input [3, T, H, W] -> uint8 frames [T, H, W, 3]."""
    mean = torch.as_tensor(mean, dtype=clip.dtype).view(-1, 1, 1, 1)
    std = torch.as_tensor(std, dtype=clip.dtype).view(-1, 1, 1, 1)
    return ((clip.cpu() * std + mean).clamp(0, 1) * 255).round().byte().permute(1, 2, 3, 0).numpy()


def spanning_groups(groups: np.ndarray) -> np.ndarray:
    """The groups that hold patches of more than one time slice.

    Args:
        groups: [T', rows, cols] group ids of a clip's tubelets, time-major (:func:`group_map` over the model's
            ``patch_embed.grid_size``): one grid per time slice, not per frame.

    Returns:
        Sorted ids [K] of the groups present in at least two time slices; empty in the frame scope, where no
        token merges across time slices.
    """
    slices = groups.shape[0]
    present = np.zeros((slices, int(groups.max()) + 1), dtype=bool)
    present[np.arange(slices).repeat(groups[0].size), groups.reshape(-1)] = True
    return np.flatnonzero(present.sum(0) > 1)


def frame_labels(frames: int, frames_per_slice: int, width: int) -> Image.Image:
    """The labels over a frame row: "time slice s" over the frames of each slice, then "frame f" over each frame.

    Args:
        frames: T, frames of the clip.
        frames_per_slice: frames of one tubelet (the model's ``t_patch_size``); 1: no time-slice labels.
        width: pixels of one frame.

    Returns:
        An RGB image ``frames * width`` pixels wide.
    """
    frame_band = text_band([(f"frame {f}", width) for f in range(frames)])
    if frames_per_slice == 1:
        return frame_band
    slices = [(f"time slice {s}", frames_per_slice * width) for s in range(frames // frames_per_slice)]
    return merge_gallery([text_band(slices, rule=True), frame_band])


def _caption(
    headline: str, scope: str, groups: np.ndarray, spanning: int, frames_per_slice: int, outlined: bool
) -> str:
    """The lines under a clip's title.

    Args:
        headline: the first line (reduction, scope, tokens, prediction).
        scope: "spacetime" or "frame".
        groups: [T', rows, cols] group ids of the tubelets.
        spanning: how many of those groups span several time slices.
        frames_per_slice: frames of one tubelet.
        outlined: whether the spanning groups are outlined in the picture.
    """
    note = ""
    if scope == "frame":
        note = " (the frame scope merges within a time slice only)"
    elif spanning and outlined:
        note = " (outlined in cyan)"
    return (
        f"{headline}\ngroups spanning several time slices: {spanning} of {len(np.unique(groups))}{note}; "
        f"a time slice is a tubelet of {frames_per_slice} frames, which share their groups by construction"
    )


@torch.no_grad()
def visualize_merges(
    model: nn.Module,
    inputs: Tensor,
    *,
    r: ScheduleSpec = 8,
    prop_attn: bool = True,
    method: str = "tome",
    class_names: Sequence[str] | None = None,
    title: str | None = None,
    labels: bool = True,
    merge_scope: str = "spacetime",
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    frame_height: int = 128,
    highlight: bool = True,
) -> Image.Image:
    """A frame grid of a clip and its merged groups, labelled and captioned.

    The same call as ``tokenmerge.image.visualize.visualize_merges`` (an image) and
    ``tokenmerge.audio.visualize.visualize_merges`` (a spectrogram); the keywords after ``labels`` are the clip's.
    Groups are those of the tubelets: the frames of one time slice (``t_patch_size`` frames) share them by
    construction, so a group "spans several frames" when it spans several time slices (:func:`spanning_groups`).

    Args:
        model: a :class:`~tokenmerge.video.SpatiotemporalViT` (patched for the call; a patch it had is restored).
        inputs: one clip [3, T, H, W], the model's input (normalized with ``mean`` / ``std``).
        r: schedule spec.
        prop_attn: proportional attention.
        method: "tome", or a baseline ("random_merge", "random_drop").
        class_names: names of the model's classes, to caption the prediction (None: "class i").
        title: the line above the caption (None: the model's class name; "": none).
        labels: label every frame and time slice, and caption the grid (r, scope, tokens before and after,
            predicted class, groups spanning several time slices) under the title.
        merge_scope: "spacetime" or "frame".
        mean, std: the normalization of ``inputs``, to show its pixels.
        frame_height: height of every frame in the picture (nearest-neighbour scaling by a whole factor).
        highlight: outline the groups that span several time slices in cyan.

    Returns:
        An RGB image: T frames wide, two rows (frames, merged groups), plus the frame labels and the captions
        above (``labels=False``: the two rows alone).
    """
    pixels = clip_pixels(inputs, mean, std)
    settings = dict(merge_scope=merge_scope, prop_attn=prop_attn, method=method)
    with temporary_patch(model, SpatiotemporalAdapter(), r, **settings) as handle:
        logits, source = handle.traced_forward(inputs[None].to(next(model.parameters()).device))
        source, predicted, prefix = source[0].cpu(), int(logits[0].argmax()), handle.protected
    slice_groups = group_map(source, prefix, tuple(model.patch_embed.grid_size))  # [T', rows, cols]
    per_slice = pixels.shape[0] // slice_groups.shape[0]
    spanning = spanning_groups(slice_groups)
    factor = max(1, round(frame_height / pixels.shape[1]))
    pixels = pixels.repeat(factor, axis=1).repeat(factor, axis=2)  # scale first, so borders stay 1 pixel wide
    groups = slice_groups.repeat(per_slice, axis=0)  # [T, rows, cols]
    merged = render_groups(
        pixels, groups, highlight=spanning if highlight else None, highlight_width=max(1, factor // 2)
    )
    grid = np.concatenate([np.concatenate(list(pixels), axis=1), np.concatenate(list(merged), axis=1)], axis=0)
    if not labels:
        return Image.fromarray(grid)
    after, before = source.shape  # final tokens, input tokens
    name = class_names[predicted] if class_names else f"class {predicted}"
    headline = f"{reduction_label(method, r)}, {merge_scope} scope: {before} -> {after} tokens; predicts {name}"
    caption = _caption(headline, merge_scope, slice_groups, len(spanning), per_slice, highlight)
    picture = merge_gallery([frame_labels(len(pixels), per_slice, pixels.shape[2]), Image.fromarray(grid)])
    return label_panels([picture], [caption], type(model).__name__ if title is None else title)


def visualize_clip_merges(
    model: nn.Module,
    clip: Tensor,
    r: ScheduleSpec = 8,
    *,
    merge_scope: str = "spacetime",
    prop_attn: bool = True,
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    frame_height: int = 128,
) -> Image.Image:
    """Deprecated (removed in the next release): :func:`visualize_merges` with ``labels=False``, the grid alone."""
    warn_renamed(
        "tokenmerge.video.visualize.visualize_clip_merges(model, clip, r, ...)",
        "tokenmerge.video.visualize.visualize_merges(model, inputs, r=..., labels=False, ...)",
    )
    settings = dict(merge_scope=merge_scope, prop_attn=prop_attn, mean=mean, std=std, frame_height=frame_height)
    return visualize_merges(model, clip, r=r, labels=False, **settings)


def _read_clip(path: str, sampling) -> Tensor:
    """The centre view [3, T, H, W] of a video file, or a one-line :class:`~tokenmerge.experiments.cli.DataError`."""
    import av

    from tokenmerge.experiments.cli import DataError

    from .data import video_views

    hint = "give a video file PyAV decodes (mp4, avi, mkv, webm, mov)"
    if not Path(path).exists():
        raise DataError(f"video {path} does not exist: {hint}.")
    if Path(path).is_dir():
        raise DataError(f"video {path} is a folder: {hint}.")
    try:
        return video_views(path, sampling)[0]
    except (av.FFmpegError, OSError, ValueError) as error:
        raise DataError(f"cannot read video {path} ({type(error).__name__}: {error}): {hint}.") from None


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: python -m tokenmerge.video.visualize [VIDEO] [options] (see --help)."""
    import argparse

    from tokenmerge.experiments.cli import SettingError, user_errors
    from tokenmerge.experiments.picture_command import check_r_option, checkpoint_errors, parse_r_option, save_picture
    from tokenmerge.experiments.validation import check_path

    from .checkpoint import load_model
    from .embedded import WEIGHTS, load_embedded_model
    from .model import CONFIGS
    from .moving_objects import FRAMES, MEAN, SIZE, STD, RandomClips
    from .sampling import clip_sampling, input_size

    parser = argparse.ArgumentParser(
        prog="python -m tokenmerge.video.visualize",
        description="Draw the merged groups of a spatiotemporal ViT across the frames of a clip.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("video", nargs="?", default=None, help="a video file; none: a held-out moving-objects clip")
    parser.add_argument("--clip", type=int, default=0, help="without VIDEO: which held-out clip (class CLIP mod 10)")
    parser.add_argument("--model", default="embedded", choices=["embedded", *sorted(CONFIGS)], help="the model")
    parser.add_argument("--checkpoint", default=None, help="weights file (MAE-ST .pth or .safetensors)")
    parser.add_argument("--num-classes", type=int, default=None, help="classifier size of an MAE-ST checkpoint")
    parser.add_argument("--r", default="16", help="schedule as in the API: 16, 16,-1 (ramp), 0.25 (ratio), [8,8,4,4]")
    parser.add_argument("--scope", default="both", choices=["spacetime", "frame", "both"], help="merge scope")
    parser.add_argument("--no-prop-attn", action="store_true", help="turn proportional attention off (MAE models)")
    parser.add_argument("--frame-height", type=int, default=128, help="height of every frame in pixels")
    parser.add_argument("--out", default="merges.png", help="where to write the picture")
    args = parser.parse_args(argv)

    @user_errors
    def run() -> None:
        spec = parse_r_option(args.r)
        if args.frame_height < 8:
            raise SettingError(f"--frame-height {args.frame_height} is too small: give pixels, e.g. 128.")
        if args.clip < 0:
            raise SettingError(f"--clip {args.clip} is not valid: give a clip number >= 0.")
        if args.checkpoint:
            check_path(args.checkpoint, "--checkpoint", "file", "Give an MAE-ST .pth or a .safetensors file.")
        frames, side = input_size(args.model)
        if args.video is None and (frames, side) != (FRAMES, SIZE):
            raise SettingError(
                f"--model {args.model} takes {frames} frames of {side} px; the built-in moving-objects clips are "
                f"{FRAMES} frames of {SIZE} px: give a video file."
            )
        sampling = clip_sampling(args.model)
        if args.video is None:
            clip, mean, std = RandomClips(args.clip + 1, seed=100, split="val")[args.clip][0], (MEAN,) * 3, (STD,) * 3
        else:
            clip, mean, std = _read_clip(args.video, sampling), sampling.mean, sampling.std
        classes = None
        with checkpoint_errors(args.checkpoint):
            if args.model == "embedded":
                loaded = load_embedded_model(args.checkpoint or WEIGHTS)
                model, classes = loaded.model, loaded.classes
            else:
                model = load_model(args.model, checkpoint=args.checkpoint, num_classes=args.num_classes)
        check_r_option(spec, args.r, len(model.blocks))
        weights = "" if args.model == "embedded" or args.checkpoint else " (random weights)"
        title = f"{args.model}{weights}: {args.video or f'held-out moving-objects clip {args.clip}'}"
        scopes = ("spacetime", "frame") if args.scope == "both" else (args.scope,)
        settings = dict(
            r=spec,
            prop_attn=not args.no_prop_attn,
            class_names=classes,
            frame_height=args.frame_height,
            mean=mean,
            std=std,
        )
        rows = [  # the title once, over the first scope's caption
            visualize_merges(model, clip, title=title if i == 0 else "", merge_scope=scope, **settings)
            for i, scope in enumerate(scopes)
        ]
        save_picture(merge_gallery(rows), args.out)

    run()


if __name__ == "__main__":
    main()
