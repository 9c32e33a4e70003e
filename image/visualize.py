"""Merge visualization as in the ToMe paper's figures: every merged group of patches in one colour.

From the source map (which input patches each final token holds), each group is filled with the mean
colour of its pixels and outlined (``tokenmerge.core.visualize``), over the image as the model sees it
(after its eval transform).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from timm.data import resolve_data_config
from torch import Tensor, nn

from tokenmerge.core import temporary_patch
from tokenmerge.core.visualize import group_map, render_groups

from .data import eval_transform
from .patch import TimmViTAdapter


def model_view(model: nn.Module, image: Image.Image) -> tuple[Tensor, np.ndarray]:
    """The model's input for an image ([1, 3, H, W]) and the same view as uint8 pixels [H, W, 3]."""
    config = resolve_data_config({}, model=model)
    tensor = eval_transform(model)(image.convert("RGB"))[None]
    mean, std = torch.tensor(config["mean"])[:, None, None], torch.tensor(config["std"])[:, None, None]
    pixels = ((tensor[0] * std + mean).clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    return tensor, pixels


@torch.no_grad()
def visualize_merges(
    model: nn.Module, image: Image.Image, r=8, scale_to: int = 384, prop_attn: bool = True
) -> Image.Image:
    """Side by side: the model's view of the image and its merged groups after the last block.

    Args:
        model: a timm ViT (patched for the call; whatever patch it had before is restored afterwards).
        image: any PIL image; the model's eval transform is applied.
        r: schedule spec for merging.
        scale_to: height in pixels of the output panels (nearest-neighbour upscaling).

    Returns:
        An RGB PIL image, two panels wide.
    """
    tensor, pixels = model_view(model, image)
    with temporary_patch(model, TimmViTAdapter(), r, prop_attn=prop_attn) as handle:
        source = handle.source_map(tensor.to(next(model.parameters()).device))[0].cpu()
    groups = group_map(source, handle.protected, tuple(model.patch_embed.grid_size))
    panels = np.concatenate([pixels, render_groups(pixels, groups)], axis=1)
    out = Image.fromarray(panels)
    factor = max(1, scale_to // pixels.shape[0])
    return out.resize((out.width * factor, out.height * factor), Image.Resampling.NEAREST)


def main() -> None:
    """Command line: python -m tokenmerge.image.visualize IMAGE [--model NAME] [--r 13] [--out merges.png]."""
    import argparse

    from .models import load_model

    parser = argparse.ArgumentParser(
        description="Draw the merged groups of a timm ViT (or the embedded model) on an image."
    )
    parser.add_argument("image", help="path of an image file")
    parser.add_argument("--model", default="embedded", help="'embedded' or a timm model name")
    parser.add_argument("--checkpoint", default=None, help="weights file (timm models); default: the local hub cache")
    parser.add_argument("--random-weights", action="store_true", help="timm model without pretrained weights")
    parser.add_argument("--r", type=int, default=8)
    parser.add_argument("--out", default="merges.png")
    args = parser.parse_args()
    model = load_model(args.model, pretrained=not args.random_weights, checkpoint=args.checkpoint)
    visualize_merges(model, Image.open(args.image), r=args.r).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
