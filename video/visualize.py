"""Merged groups drawn across the frames of a clip: one colour per group in every frame it spans.

Row 1 shows the frames as the model sees them, row 2 the groups of input patches that ended in the same
token after the last block, each filled with its mean colour over all the frames it covers and outlined.
In the "spacetime" scope (the paper's) a group can span frames: a still background becomes one colour across
the clip while a moving object keeps tokens of its own. In the "frame" scope every group stays in one
tubelet time slice.

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
    warn_renamed,
)

from .patch import SpatiotemporalAdapter

__all__ = ["clip_pixels", "visualize_clip_merges", "visualize_merges"]


def clip_pixels(clip: Tensor, mean, std) -> np.ndarray:
    """A normalized model input [3, T, H, W] -> uint8 frames [T, H, W, 3]."""
    mean = torch.as_tensor(mean, dtype=clip.dtype).view(-1, 1, 1, 1)
    std = torch.as_tensor(std, dtype=clip.dtype).view(-1, 1, 1, 1)
    return ((clip.cpu() * std + mean).clamp(0, 1) * 255).round().byte().permute(1, 2, 3, 0).numpy()


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
    frame_height: int = 96,
) -> Image.Image:
    """A frame grid of a clip and its merged groups, captioned.

    The same call as ``tokenmerge.image.visualize.visualize_merges`` (an image) and
    ``tokenmerge.audio.visualize.visualize_merges`` (a spectrogram); the keywords after ``labels`` are the clip's.

    Args:
        model: a :class:`~tokenmerge.video.SpatiotemporalViT` (patched for the call; a patch it had is restored).
        inputs: one clip [3, T, H, W], the model's input (normalized with ``mean`` / ``std``).
        r: schedule spec.
        prop_attn: proportional attention.
        method: "tome", or a baseline ("random_merge", "random_drop").
        class_names: names of the model's classes, to caption the prediction (None: "class i").
        title: the line above the caption (None: the model's class name; "": none).
        labels: caption the grid (r, scope, tokens before and after, predicted class) under the title.
        merge_scope: "spacetime" or "frame".
        mean, std: the normalization of ``inputs``, to show its pixels.
        frame_height: height of every frame in the picture (nearest-neighbour scaling).

    Returns:
        An RGB image: T frames wide, two rows (frames, merged groups), plus the captions above.
    """
    pixels = clip_pixels(inputs, mean, std)
    settings = dict(merge_scope=merge_scope, prop_attn=prop_attn, method=method)
    with temporary_patch(model, SpatiotemporalAdapter(), r, **settings) as handle:
        logits, source = handle.traced_forward(inputs[None].to(next(model.parameters()).device))
        source, predicted, prefix = source[0].cpu(), int(logits[0].argmax()), handle.protected
    slices, rows, cols = model.patch_embed.grid_size
    groups = group_map(source, prefix, (slices, rows, cols)).repeat(pixels.shape[0] // slices, axis=0)
    factor = max(1, round(frame_height / pixels.shape[1]))
    pixels = pixels.repeat(factor, axis=1).repeat(factor, axis=2)  # scale first, so borders stay 1 pixel wide
    merged = render_groups(pixels, groups)
    grid = np.concatenate([np.concatenate(list(pixels), axis=1), np.concatenate(list(merged), axis=1)], axis=0)
    if not labels:
        return Image.fromarray(grid)
    after, before = source.shape  # final tokens, input tokens
    name = class_names[predicted] if class_names else f"class {predicted}"
    caption = f"{reduction_label(method, r)}, {merge_scope} scope: {before} -> {after} tokens; predicts {name}"
    return label_panels([Image.fromarray(grid)], [caption], type(model).__name__ if title is None else title)


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
    parser.add_argument("--frame-height", type=int, default=96, help="height of every frame in pixels")
    parser.add_argument("--out", default="merges.png", help="where to write the picture")
    args = parser.parse_args(argv)

    @user_errors
    def run() -> None:
        spec = parse_r_option(args.r)
        if args.frame_height < 8:
            raise SettingError(f"--frame-height {args.frame_height} is too small: give pixels, e.g. 96.")
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
