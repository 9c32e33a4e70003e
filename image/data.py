"""ImageNet-style evaluation data: torchvision ``ImageFolder`` with the model's own timm transforms.

Corrupt or unreadable files are reported and skipped (the batch goes on without them); the list of
skipped files ends up in the evaluation results.
"""

from __future__ import annotations

from pathlib import Path

from timm.data import create_transform, resolve_data_config
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision.datasets import ImageFolder

from tokenmerge.core.data import Unreadable, collate_skipping


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
        root: the validation folder, e.g. ImageNet's ``val`` arranged by class.
        model: a timm model (its pretrained_cfg gives the data config).
        batch_size, workers: DataLoader settings.
        max_samples: evaluate an evenly spaced subset of this size (quick runs); None for all.

    Yields:
        :class:`tokenmerge.core.data.Batch` objects (inputs: [B, 3, H, W] images).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"Image folder {root} does not exist. Pass data.root=/path/to/val, a folder with one "
            "sub-folder of images per class (torchvision ImageFolder layout)."
        )
    dataset = SkippingImageFolder(str(root), transform=eval_transform(model))
    if max_samples is not None and max_samples < len(dataset):
        step = len(dataset) / max_samples
        dataset = Subset(dataset, [int(i * step) for i in range(max_samples)])
    return DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate_skipping)
