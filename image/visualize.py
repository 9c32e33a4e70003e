"""Merge visualization as in the ToMe paper's figures: every merged group of patches in one colour.

From the source map (which input patches each final token holds), each group is filled with the mean colour
of its pixels and outlined (``tokenmerge.experiments.visualize``). The picture shows the part of the image the model
sees (its eval resize and centre crop) at the size asked for, drawn from the original pixels, so a 32x32 model
still gives a readable picture of a large photo; borders stay 1 pixel wide at every size. Captions name the
model, r, the tokens left and the class the merged model predicts.

    python -m tokenmerge.image.visualize photo.jpg [--model embedded] [--r 8 | 8,-1 | 0.25] [--size 384]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from timm.data import resolve_data_config
from torch import Tensor, nn

from tokenmerge.core import ScheduleSpec, temporary_patch
from tokenmerge.experiments.cli import DataError
from tokenmerge.experiments.visualize import group_map, label_panels, merge_gallery, reduction_label, render_groups

from .data import eval_transform
from .patch import TimmViTAdapter

__all__ = ["display_view", "load_image", "model_view", "visualize_merges"]


def load_image(path, key: str = "image") -> Image.Image:
    """Open and decode an image file as RGB, or raise a one-line :class:`~tokenmerge.experiments.cli.DataError`."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except FileNotFoundError:
        raise DataError(f"{key} {path} does not exist: give the path of an image file.") from None
    except IsADirectoryError:
        raise DataError(f"{key} {path} is a folder: give the path of an image file.") from None
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise DataError(
            f"cannot read {key} {path} ({type(error).__name__}: {error}): give a PNG, JPEG or another format "
            "Pillow reads."
        ) from None


def model_view(model: nn.Module, image: Image.Image) -> tuple[Tensor, np.ndarray]:
    """The model's input for an image ([1, 3, H, W]) and the same view as uint8 pixels [H, W, 3]."""
    config = resolve_data_config({}, model=model)
    tensor = eval_transform(model)(image.convert("RGB"))[None]
    mean, std = torch.tensor(config["mean"])[:, None, None], torch.tensor(config["std"])[:, None, None]
    pixels = ((tensor[0] * std + mean).clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    return tensor, pixels


def display_view(model: nn.Module, image: Image.Image, height: int) -> np.ndarray:
    """The region of ``image`` the model sees, ``height`` pixels high, resampled from the original pixels.

    timm's eval transform resizes (shorter side to ``input / crop_pct``) and centre-crops; the same region of the
    original image is cut out here at display resolution. Other crop modes fall back to the model's view, resized.

    Returns:
        uint8 [height, width, 3], width in the model's aspect ratio.
    """
    config = resolve_data_config({}, model=model)
    _, in_h, in_w = config["input_size"]
    width = max(1, round(height * in_w / in_h))
    image = image.convert("RGB")
    crop_pct, mode = config.get("crop_pct") or 1.0, config.get("crop_mode") or "center"
    W, H = image.size
    if mode == "center" and in_h == in_w:  # torchvision Resize(int): the shorter side to input / crop_pct
        scale_w = scale_h = math.floor(in_h / crop_pct) / min(W, H)
    elif mode == "squash":  # both sides to input / crop_pct
        scale_w, scale_h = math.floor(in_w / crop_pct) / W, math.floor(in_h / crop_pct) / H
    else:
        pixels = Image.fromarray(model_view(model, image)[1])
        return np.asarray(pixels.resize((width, height), _resampling(pixels.height, height)))
    box_w, box_h = in_w / scale_w, in_h / scale_h  # the centre crop, in original pixels
    box = ((W - box_w) / 2, (H - box_h) / 2, (W + box_w) / 2, (H + box_h) / 2)
    return np.asarray(image.resize((width, height), _resampling(box_h, height), box=box))


def _resampling(source: float, target: int) -> Image.Resampling:
    """Bicubic for photos; nearest for small images blown up (a 32-pixel image stays crisp instead of blurred)."""
    return Image.Resampling.NEAREST if target > 2 * source else Image.Resampling.BICUBIC


def model_title(model: nn.Module) -> str:
    """The model's name from its timm config ("vit_small_patch16_224.augreg_in21k_ft_in1k"), else its class."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    name = cfg.get("architecture")
    if not name:
        return type(model).__name__
    return f"{name}.{cfg['tag']}" if cfg.get("tag") else name


def class_name(model: nn.Module, index: int, class_names: Sequence[str] | None = None) -> str:
    """A readable name of class ``index``: given names, the model's ``label_names``, ImageNet's, or "class i"."""
    names = class_names or (getattr(model, "pretrained_cfg", None) or {}).get("label_names")
    if names is not None and 0 <= index < len(names):
        return str(names[index])
    from timm.data import ImageNetInfo, infer_imagenet_subset

    subset = infer_imagenet_subset(model)
    if subset:
        return ImageNetInfo(subset).index_to_description(index).split(",")[0]
    return f"class {index}"


@torch.no_grad()
def visualize_merges(
    model: nn.Module,
    inputs: Image.Image,
    *,
    r: ScheduleSpec = 8,
    prop_attn: bool = True,
    method: str = "tome",
    class_names: Sequence[str] | None = None,
    title: str | None = None,
    labels: bool = True,
    scale_to: int = 384,
) -> Image.Image:
    """Side by side: the part of the image the model sees, and its merged groups after the last block.

    The same call as ``tokenmerge.video.visualize.visualize_merges`` (a clip) and
    ``tokenmerge.audio.visualize.visualize_merges`` (a spectrogram); the keywords after ``labels`` are the image's.

    Args:
        model: a timm ViT (patched for the call; whatever patch it had before is restored afterwards).
        inputs: one image, any PIL image: the model's eval transform makes its input [1, 3, H, W] (H, W: the
            model's input size).
        r: schedule spec for merging (8, (8, -1.0), 0.25, or one r per block).
        prop_attn: proportional attention.
        method: "tome", or a baseline ("random_merge", "random_drop").
        class_names: names of the model's classes (default: the model's ``label_names`` or ImageNet's).
        title: the line above the captions (None: the model's name from its timm config; "": none).
        labels: caption the panels (model input size and tokens; r, tokens left, predicted class).
        scale_to: height in pixels of each of the two panels (drawn from the original image, not upscaled from
            the model's input); captions add a strip above.

    Returns:
        An RGB PIL image, two panels of ``scale_to`` pixels high (plus the captions).
    """
    tensor, _ = model_view(model, inputs)
    view = display_view(model, inputs, scale_to)
    device = next(model.parameters()).device
    with temporary_patch(model, TimmViTAdapter(), r, prop_attn=prop_attn, method=method) as handle:
        logits, source = handle.traced_forward(tensor.to(device))
        protected = handle.protected
    tokens_left, num_input = source.shape[1:]
    groups = group_map(source[0].cpu(), protected, tuple(model.patch_embed.grid_size))
    panels = [Image.fromarray(view), Image.fromarray(render_groups(view, groups))]
    if not labels:
        return merge_gallery(panels, columns=2)
    _, in_h, in_w = tensor.shape[1:]
    predicted = class_name(model, int(logits[0].argmax()), class_names)
    captions = [
        f"model input {in_w}x{in_h}: {num_input} tokens",
        f"{reduction_label(method, r)}: {tokens_left} tokens left; predicts {predicted}",
    ]
    return label_panels(panels, captions, model_title(model) if title is None else title)


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: python -m tokenmerge.image.visualize IMAGE [options] (see --help)."""
    import argparse

    from tokenmerge.core.state import REDUCTIONS
    from tokenmerge.experiments.cli import SettingError, user_errors
    from tokenmerge.experiments.picture_command import check_r_option, parse_r_option, save_picture

    from .checkpoint import CLI_OPTIONS, check_model, load_model

    parser = argparse.ArgumentParser(
        prog="python -m tokenmerge.image.visualize",
        description="Draw the merged groups of a timm ViT (or the embedded model) on an image.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("image", help="path of an image file")
    parser.add_argument("--model", default="embedded", help="'embedded' (shipped, 32x32 input) or a timm model name")
    parser.add_argument("--checkpoint", default=None, help="weights file; timm models default to the local hub cache")
    parser.add_argument("--random-weights", action="store_true", help="timm model without pretrained weights")
    parser.add_argument("--allow-download", action="store_true", help="let timm download weights that are not cached")
    parser.add_argument("--num-classes", type=int, default=None, help="classifier size of a fine-tuned checkpoint")
    parser.add_argument("--r", default="8", help="schedule as in the API: 8, 8,-1 (ramp), 0.25 (ratio), [8,8,4,4]")
    parser.add_argument("--method", default="tome", choices=sorted(REDUCTIONS))
    parser.add_argument("--no-prop-attn", action="store_true", help="turn proportional attention off (MAE models)")
    parser.add_argument("--size", type=int, default=384, help="height of each panel in pixels")
    parser.add_argument("--out", default="merges.png", help="where to write the picture")
    args = parser.parse_args(argv)

    @user_errors
    def run() -> None:
        spec = parse_r_option(args.r)
        if args.size < 8:
            raise SettingError(f"--size {args.size} is too small: give the panel height in pixels, e.g. 384.")
        pretrained = not args.random_weights
        weights = dict(checkpoint=args.checkpoint, num_classes=args.num_classes, allow_download=args.allow_download)
        check_model(args.model, pretrained=pretrained, options=CLI_OPTIONS, **weights)
        image = load_image(args.image)
        model = load_model(args.model, pretrained=pretrained, **weights)
        check_r_option(spec, args.r, len(model.blocks))
        title = model_title(model) + (" (random weights)" if args.random_weights else "")
        picture = visualize_merges(
            model, image, r=spec, scale_to=args.size, prop_attn=not args.no_prop_attn, method=args.method, title=title
        )
        save_picture(picture, args.out)

    run()


if __name__ == "__main__":
    main()
