"""Merged groups drawn over a spectrogram: time on x, mel bins on y (low frequencies at the bottom).

The top panel is the log-mel spectrogram as the model sees it (colour-mapped), the bottom panel the groups of
patches that ended in the same token after the last block, each filled with its mean colour and outlined, as
in the ToMe paper's figures. Axes give the time in seconds and the mel bin, with short ticks at the edges of
the model's patches (read from ``model.patch_embed``); a caption names the schedule, the patch size, the tokens
left and the predicted class.

    python -m tokenmerge.audio.visualize [AUDIO] [--model embedded] [--r 6 | 6,-1 | 0.25] [--start 0.0]

AUDIO is an audio file (wav, flac, mp3, ...) or a video file's audio track; without one it draws a held-out
clip of the embedded spoken-words task (``--clip`` picks which).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps
from PIL import Image
from torch import Tensor, nn

from tokenmerge.core import ScheduleSpec, temporary_patch
from tokenmerge.experiments.visualize import (
    draw_axes,
    group_map,
    label_panels,
    nice_ticks,
    reduction_label,
    render_groups,
    warn_renamed,
)

from .patch import SpectrogramAdapter

__all__ = ["spectrogram_axes", "spectrogram_pixels", "visualize_merges", "visualize_spectrogram_merges"]

#: Seconds between feature frames: :func:`tokenmerge.audio.fbank` shifts its 25 ms windows by 10 ms.
FRAME_SHIFT = 0.01
#: Fewest pixels between two labelled ticks.
TICK_SPACING = 48
#: White cells (times ``scale`` pixels) between the spectrogram and its merged groups.
GAP_CELLS = 2


def spectrogram_pixels(features: Tensor, colormap: str = "magma") -> np.ndarray:
    """Features [1, T, F] -> uint8 RGB [F, T, 3]: time on x, frequency upwards, min-max scaled and colour-mapped."""
    values = features[0].float().cpu().numpy().T[::-1]  # [F, T], highest bin first
    span = values.max() - values.min()
    scaled = (values - values.min()) / (span if span > 0 else 1.0)
    return (colormaps[colormap](scaled)[..., :3] * 255).round().astype(np.uint8)


def spectrogram_axes(
    panels: Image.Image, shape: tuple[int, int], patch: tuple[int, int], scale: int, seconds_per_frame: float
) -> Image.Image:
    """Time and mel-bin axes around a spectrogram and its merged groups stacked with a gap (as drawn here).

    Args:
        panels: the two panels of T x F cells, ``scale`` pixels each, one above the other, ``GAP_CELLS`` apart.
        shape: (T, F), frames and mel bins of the features.
        patch: (frames, bins) of one patch: short ticks at every patch edge.
        scale: pixels per frame and per mel bin.
        seconds_per_frame: the features' frame shift, for the time axis in seconds.

    Returns:
        An RGB image: ``panels`` with a labelled time axis under them and a mel-bin axis left of each panel.
    """
    frames, bins = shape
    duration = frames * seconds_per_frame
    x_ticks = [(t / seconds_per_frame * scale, f"{t:g}") for t in nice_ticks(duration, panels.width // TICK_SPACING)]
    offsets, height = (0, (bins + GAP_CELLS) * scale), bins * scale  # each panel's top, and its height
    bin_ticks = [b for b in nice_ticks(bins, height // TICK_SPACING) if b < bins]  # a top label would meet a 0
    y_ticks = [(top + (bins - b) * scale, f"{b:g}") for top in offsets for b in bin_ticks]
    minor_x = [t * scale for t in range(0, frames + 1, patch[0])]
    minor_y = [top + b * scale for top in offsets for b in range(0, bins + 1, patch[1])]
    titles = [(top + height / 2, text) for top, text in zip(offsets, ("spectrogram: mel bin", "groups: mel bin"))]
    return draw_axes(panels, x_ticks, y_ticks, "time (s)", titles, minor_x, minor_y)


def visualize_merges(
    model: nn.Module,
    inputs: Tensor,
    *,
    r: ScheduleSpec = 4,
    prop_attn: bool = True,
    method: str = "tome",
    class_names: Sequence[str] | None = None,
    title: str | None = None,
    labels: bool = True,
    scale: int = 3,
    classes: Sequence[str] | None = None,
    seconds_per_frame: float = FRAME_SHIFT,
) -> Image.Image:
    """A spectrogram above its merged groups, with time and mel-bin axes, captioned.

    The same call as ``tokenmerge.image.visualize.visualize_merges`` (an image) and
    ``tokenmerge.video.visualize.visualize_merges`` (a clip); the keywords after ``labels`` are the spectrogram's.

    Args:
        model: a :class:`~tokenmerge.audio.SpectrogramViT` (patched for the call; a patch it had is restored).
        inputs: one clip's features [1, T, F] (T frames, F mel bins), the model's input (e.g. from
            :func:`tokenmerge.audio.fbank`).
        r: schedule spec.
        prop_attn: proportional attention.
        method: "tome", or a baseline ("random_merge", "random_drop").
        class_names: names of the model's classes, to caption the prediction (None: "class i").
        title: the line above the caption (None: the model's class name; "": none).
        labels: draw the axes (:func:`spectrogram_axes`) and caption the panels (r, patch size, tokens before
            and after, predicted class) under the title.
        scale: pixels per frame and per mel bin (nearest-neighbour scaling).
        classes: deprecated spelling of ``class_names`` (warns; removed in the next release).
        seconds_per_frame: the features' frame shift, for the time axis (:func:`tokenmerge.audio.fbank`: 10 ms).

    Returns:
        An RGB image: two panels of T x F cells (times ``scale``), spectrogram on top, with the axes around them
        and the captions above (``labels=False``: the two panels alone).
    """
    if classes is not None:
        warn_renamed(
            "tokenmerge.audio.visualize.visualize_merges(..., classes=...)", "visualize_merges(..., class_names=...)"
        )
        class_names = classes if class_names is None else class_names
    device = next(model.parameters()).device
    patched = temporary_patch(model, SpectrogramAdapter(), r, prop_attn=prop_attn, method=method)
    with patched as handle, torch.no_grad():  # not a decorator: the warning above names the caller's line
        logits, source = handle.traced_forward(inputs[None].to(device))
        source, predicted, prefix = source[0].cpu(), int(logits[0].argmax()), handle.protected
    pixels = spectrogram_pixels(inputs).repeat(scale, axis=0).repeat(scale, axis=1)  # borders stay 1 pixel wide
    groups = group_map(source, prefix, tuple(model.patch_embed.grid_size)).T[::-1]  # laid out like the pixels
    gap = np.full((GAP_CELLS * scale, pixels.shape[1], 3), 255, np.uint8)
    picture = Image.fromarray(np.concatenate([pixels, gap, render_groups(pixels, groups)]))
    if not labels:
        return picture
    after, before = source.shape  # final tokens, input tokens
    name = class_names[predicted] if class_names else f"class {predicted}"
    patch = tuple(model.patch_embed.patch_size)  # (frames, bins)
    caption = f"{reduction_label(method, r)}: {before} -> {after} tokens; predicts {name}"
    caption += f"\ntop: spectrogram, bottom: merged groups; short ticks: edges of the {patch[0]} x {patch[1]} patches"
    axes = spectrogram_axes(picture, tuple(inputs.shape[1:]), patch, scale, seconds_per_frame)
    return label_panels([axes], [caption], type(model).__name__ if title is None else title)


def visualize_spectrogram_merges(
    model: nn.Module,
    features: Tensor,
    r: ScheduleSpec = 4,
    *,
    prop_attn: bool = True,
    classes: Sequence[str] | None = None,
    scale: int = 3,
) -> Image.Image:
    """Deprecated (removed in the next release): :func:`visualize_merges`, with ``class_names=`` for ``classes=``."""
    warn_renamed(
        "tokenmerge.audio.visualize.visualize_spectrogram_merges(model, features, r, classes=...)",
        "tokenmerge.audio.visualize.visualize_merges(model, inputs, r=..., class_names=...)",
    )
    return visualize_merges(model, features, r=r, prop_attn=prop_attn, class_names=classes, scale=scale)


_FILE_HINT = "give an audio file (wav, flac, mp3, ogg, m4a) or a video with an audio track"


def _check_file(path: str) -> None:
    """A one-line :class:`~tokenmerge.experiments.cli.DataError` if ``path`` is missing or a folder."""
    from tokenmerge.experiments.cli import DataError

    if not Path(path).exists():
        raise DataError(f"audio {path} does not exist: {_FILE_HINT}.")
    if Path(path).is_dir():
        raise DataError(f"audio {path} is a folder: {_FILE_HINT}.")


def _read_features(path: str, model: nn.Module, preset, start: float) -> Tensor:
    """Features [1, T, F] of a file for ``model`` (its T and F, the preset's statistics) from ``start`` seconds on,
    or a one-line :class:`~tokenmerge.experiments.cli.DataError`."""
    from tokenmerge.experiments.cli import DataError

    from .data import SAMPLE_RATE, load_audio
    from .features import fbank

    _check_file(path)
    try:
        waveform = load_audio(path, SAMPLE_RATE)[round(start * SAMPLE_RATE) :]
        return fbank(
            waveform,
            SAMPLE_RATE,
            num_mel_bins=model.num_mel_bins,
            target_length=model.target_length,
            mean=preset.mean,
            std=preset.std,
        )
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read audio {path} ({type(error).__name__}: {error}): {_FILE_HINT}.") from None


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: python -m tokenmerge.audio.visualize [AUDIO] [options] (see --help)."""
    import argparse

    from tokenmerge.experiments.cli import SettingError, user_errors
    from tokenmerge.experiments.picture_command import check_r_option, checkpoint_errors, parse_r_option, save_picture
    from tokenmerge.experiments.validation import check_path

    from .checkpoint import EMBEDDED, load_model
    from .embedded import load_embedded_model
    from .features import PRESETS, SPOKEN_WORDS, get_preset
    from .model import CONFIGS
    from .spoken_words import WORDS, SpokenWordsDataset

    parser = argparse.ArgumentParser(
        prog="python -m tokenmerge.audio.visualize",
        description="Draw the merged groups of a spectrogram ViT over the spectrogram of a clip.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("audio", nargs="?", default=None, help="an audio or video file; none: a spoken-words clip")
    parser.add_argument("--clip", type=int, default=0, help="without AUDIO: which held-out clip (word CLIP mod 10)")
    models = [*sorted(EMBEDDED), *sorted(CONFIGS)]
    parser.add_argument("--model", default="embedded", choices=models, help="the model")
    parser.add_argument("--checkpoint", default=None, help="weights file (AudioMAE .pth or .safetensors)")
    parser.add_argument("--num-classes", type=int, default=None, help="classifier size of an AudioMAE checkpoint")
    parser.add_argument(
        "--preset", default=None, choices=sorted(PRESETS), help="feature statistics (default: the model's dataset's)"
    )
    parser.add_argument("--start", type=float, default=0.0, help="seconds of the file to skip")
    parser.add_argument("--r", default="6", help="schedule as in the API: 6, 6,-1 (ramp), 0.25 (ratio), [8,8,4,4]")
    parser.add_argument("--no-prop-attn", action="store_true", help="turn proportional attention off (MAE models)")
    parser.add_argument("--scale", type=int, default=3, help="pixels per frame and per mel bin")
    parser.add_argument("--out", default="merges.png", help="where to write the picture")
    args = parser.parse_args(argv)

    @user_errors
    def run() -> None:
        spec = parse_r_option(args.r)
        if not 1 <= args.scale <= 16:
            raise SettingError(f"--scale {args.scale} is not valid: give pixels per cell from 1 to 16.")
        if args.clip < 0 or args.start < 0:
            raise SettingError("--clip and --start must be >= 0.")
        if args.checkpoint:
            check_path(args.checkpoint, "--checkpoint", "file", "Give an AudioMAE .pth or a .safetensors file.")
        if args.audio is not None:
            _check_file(args.audio)  # before a model is loaded
        classes = None
        with checkpoint_errors(args.checkpoint):
            if args.model in EMBEDDED:
                loaded = load_embedded_model(args.checkpoint or EMBEDDED[args.model])
                model, classes = loaded.model, loaded.classes
            else:
                model = load_model(args.model, checkpoint=args.checkpoint, num_classes=args.num_classes)
        check_r_option(spec, args.r, len(model.blocks))
        if args.audio is None:
            if (model.target_length, model.num_mel_bins) != (SPOKEN_WORDS.target_length, SPOKEN_WORDS.num_mel_bins):
                raise SettingError(
                    f"--model {args.model} takes {model.target_length} frames x {model.num_mel_bins} mel bins; the "
                    f"built-in spoken-words clips are {SPOKEN_WORDS.target_length} x {SPOKEN_WORDS.num_mel_bins}: "
                    "give an audio file."
                )
            data = SpokenWordsDataset(args.clip + 1, seed=100, split="val", train=False, utterances_per_word=1)
            features = data[args.clip][0]
            print(f"held-out spoken-words clip {args.clip}: '{WORDS[args.clip % len(WORDS)]}'")
        else:
            preset = get_preset(args.preset or ("spoken_words" if args.model in EMBEDDED else "audioset"))
            features = _read_features(args.audio, model, preset, args.start)
        picture = visualize_merges(
            model, features, r=spec, prop_attn=not args.no_prop_attn, class_names=classes, scale=args.scale
        )
        save_picture(picture, args.out)

    run()


if __name__ == "__main__":
    main()
