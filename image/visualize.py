"""Merge visualization as in the ToMe paper's figures: every merged group of patches in one colour.

From the source map (which input patches each final token holds), each group is filled with the mean
colour of its pixels and outlined, over the image as the model sees it (after its eval transform).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from timm.data import resolve_data_config
from torch import Tensor, nn

from .data import eval_transform
from .patch import apply_patch, merged_source


def group_map(source: Tensor, num_prefix: int, grid: tuple[int, int]) -> Tensor:
    """Group index of every patch.

    Args:
        source: [N', N] source map of one image (prefix tokens first along both axes).
        num_prefix: class/distillation/register tokens to leave out.
        grid: patch grid (rows, cols) with rows * cols == N - num_prefix.

    Returns:
        [rows, cols] long tensor: the final token that holds each patch.
    """
    patches = source[:, num_prefix:]
    if patches.shape[1] != grid[0] * grid[1]:
        raise ValueError(f"source covers {patches.shape[1]} patches, but the grid {grid} has {grid[0] * grid[1]}.")
    return patches.argmax(0).view(grid)


def render_groups(image: np.ndarray, groups: Tensor, border: bool = True) -> np.ndarray:
    """Fill each group with its mean colour. image: [H, W, 3] uint8; groups: [rows, cols]. Returns [H, W, 3] uint8."""
    height, width, _ = image.shape
    rows, cols = groups.shape
    ids = groups.numpy().repeat(height // rows, 0).repeat(width // cols, 1)
    ids = np.pad(ids, ((0, height - ids.shape[0]), (0, width - ids.shape[1])), mode="edge")
    flat_ids, flat_pixels = ids.reshape(-1), image.reshape(-1, 3).astype(np.float64)
    counts = np.bincount(flat_ids, minlength=ids.max() + 1)[:, None]
    sums = np.stack([np.bincount(flat_ids, weights=flat_pixels[:, c], minlength=ids.max() + 1) for c in range(3)], 1)
    out = (sums / np.maximum(counts, 1))[flat_ids].reshape(image.shape)
    if border:
        edge = np.zeros((height, width), dtype=bool)
        edge[:-1] |= ids[:-1] != ids[1:]
        edge[:, :-1] |= ids[:, :-1] != ids[:, 1:]
        out[edge] = 255.0
    return out.round().clip(0, 255).astype(np.uint8)


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
        model: an unpatched timm ViT (patched for the call and restored).
        image: any PIL image; the model's eval transform is applied.
        r: schedule spec for merging.
        scale_to: height in pixels of the output panels (nearest-neighbour upscaling).

    Returns:
        An RGB PIL image, two panels wide.
    """
    tensor, pixels = model_view(model, image)
    handle = apply_patch(model, r=r, prop_attn=prop_attn)
    try:
        source = merged_source(handle, tensor.to(next(model.parameters()).device))[0].cpu()
    finally:
        handle.remove()
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
