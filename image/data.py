"""ImageNet-style evaluation data: torchvision ``ImageFolder`` with the model's own timm transforms.

Corrupt or unreadable files are reported and skipped (the batch goes on without them); the list of
skipped files ends up in the evaluation results.
"""

from __future__ import annotations

import os
from pathlib import Path

from timm.data import create_transform, resolve_data_config
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS

from tokenmerge.experiments.cli import DataError
from tokenmerge.experiments.data import Unreadable, collate_skipping
from tokenmerge.experiments.validation import check_path


class SkippingImageFolder(ImageFolder):
    """``ImageFolder`` whose items are ``(image, target)`` or :class:`Unreadable` for corrupt files."""

    def __getitem__(self, index: int):
        path, target = self.samples[index]
        try:
            image = self.loader(path)
            if self.transform is not None:
                image = self.transform(image)
        except (OSError, ValueError, SyntaxError) as error:
            return Unreadable(path, f"{type(error).__name__}: {error}")
        return image, target


LAYOUT = "a folder with one sub-folder of images per class (torchvision ImageFolder: val/<class>/<image>.jpg)"


def _has_image(folder: Path) -> bool:
    """Whether the folder (or any folder below it, as ImageFolder searches) holds a file with an image extension."""
    for _, _, files in os.walk(folder, followlinks=True):
        if any(name.lower().endswith(IMG_EXTENSIONS) for name in files):
            return True
    return False


def check_image_folder(root: str | Path, key: str = "data.root") -> list[str]:
    """Check an ImageFolder layout before reading any image; returns its class names (sorted, as ImageFolder does).

    Raises :class:`~tokenmerge.experiments.cli.DataError` (a ``FileNotFoundError``) for a missing folder, a file, an
    empty folder, images without class sub-folders and an empty class folder, each with the layout to use.
    """
    hint = f"Pass {key}=/path/to/val: {LAYOUT}."
    root = check_path(root, key, "folder", hint)
    classes = sorted(entry.name for entry in os.scandir(root) if entry.is_dir())
    if not classes:
        images = [entry.name for entry in os.scandir(root) if entry.name.lower().endswith(IMG_EXTENSIONS)]
        if images:
            count = f"{len(images)} image{'s' if len(images) != 1 else ''}"
            raise DataError(f"{key}={root} holds {count} but no class sub-folders. {hint}")
        raise DataError(f"{key}={root} is empty. {hint}")
    empty = [name for name in classes if not _has_image(root / name)]
    if empty:
        shown = ", ".join(empty[:5]) + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
        folders = f"class folders {shown} hold" if len(empty) > 1 else f"class folder {shown} holds"
        raise DataError(f"{key}={root}: {folders} no images ({', '.join(IMG_EXTENSIONS)}). {hint}")
    return classes


def eval_transform(model: nn.Module):
    """timm's evaluation transform for the model's data config (input size, resize, crop, mean/std)."""
    return create_transform(**resolve_data_config({}, model=model), is_training=False)


def build_eval_loader(
    root: str | Path,
    model: nn.Module,
    *,
    batch_size: int = 64,
    workers: int = 2,
    max_samples: int | None = None,
) -> DataLoader:
    """A DataLoader over an ImageFolder (``root/<class>/<image>``) with the model's eval transform.

    Args:
        root: the validation folder, e.g. ImageNet's ``val`` arranged by class (checked first, see
            :func:`check_image_folder`).
        model: a timm model (its pretrained_cfg gives the data config).
        batch_size, workers: DataLoader settings.
        max_samples: evaluate an evenly spaced subset of this size (quick runs); None for all.

    Yields:
        :class:`tokenmerge.experiments.data.Batch` objects (inputs: [B, 3, H, W] images).
    """
    check_image_folder(root)
    dataset = SkippingImageFolder(str(root), transform=eval_transform(model))
    if max_samples is not None and max_samples < len(dataset):
        step = len(dataset) / max_samples
        dataset = Subset(dataset, [int(i * step) for i in range(max_samples)])
    return DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate_skipping)
