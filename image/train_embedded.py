"""Train the embedded photo-object ViT (fixed seed; reproduces ``image/weights/photo_vit.safetensors``).

    python -m tokenmerge.image.train_embedded [--steps 4000] [--out results/train_embedded/photo_vit.safetensors]

The default output is outside the package, so a trial run never overwrites the shipped weights; to replace them,
pass ``--out image/weights/photo_vit.safetensors`` explicitly.

The recipe and loop are the shared ones (:mod:`tokenmerge.experiments.embedded_training`), with fresh random
images every step (``photo_objects.RandomObjects``, training stripes, random flips) and validation on a fixed set
of held-out-stripe images. ``--tome-r`` trains with merging on. Under torchrun each process trains its share of
every batch (``--batch-size`` per process) and rank 0 writes the weights.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision.transforms.v2 as T
from torch.utils.data import TensorDataset

from tokenmerge.experiments.cli import user_errors
from tokenmerge.experiments.distributed import is_main_process
from tokenmerge.experiments.embedded_training import (
    EmbeddedRecipe,
    EmbeddedRun,
    embedded_parser,
    recipe_from_args,
    train_embedded,
)

from .embedded import DATA_CONFIG, WEIGHTS, create_embedded_model, save_embedded_model
from .patch import apply_patch
from .photo_objects import PHOTOS, RandomObjects, class_images, load_photos


def normalize_transform() -> T.Compose:
    """PIL image -> float tensor with the embedded model's normalization."""
    return T.Compose(
        [T.ToImage(), T.ToDtype(torch.float32, scale=True), T.Normalize(DATA_CONFIG["mean"], DATA_CONFIG["std"])]
    )


def train_transform() -> T.Compose:
    """Training augmentation (flips) and the embedded model's normalization."""
    return T.Compose([T.RandomHorizontalFlip(), normalize_transform()])


def validation_set(per_class: int, size: int, seed: int) -> TensorDataset:
    """A fixed set of held-out-stripe images: (image [3, size, size], class) pairs, ``per_class`` of each class."""
    normalize = normalize_transform()
    photos = list(load_photos().values())
    images, labels = [], []
    for label in range(len(photos)):
        images += [normalize(image) for image in class_images(photos, label, "val", per_class, size, seed)]
        labels += [label] * per_class
    return TensorDataset(torch.stack(images), torch.tensor(labels))


DEFAULT_OUT = Path("results/train_embedded/photo_vit.safetensors")
RECIPE = EmbeddedRecipe(steps=4000, batch_size=64, warmup=100, eval_every=500)


def train_on_photo_objects(model: torch.nn.Module, recipe: EmbeddedRecipe, num_classes: int) -> EmbeddedRun:
    """Train ``model`` in place on fresh photo objects (merging on if ``recipe.tome_r``), validated on held-out-stripe
    images; the loop every embedded image model shares."""
    size = DATA_CONFIG["input_size"][-1]
    if recipe.tome_r:
        apply_patch(model, r=recipe.tome_r)
    return train_embedded(
        model,
        RandomObjects(recipe.steps * recipe.batch_size, size, train_transform(), seed=recipe.seed),
        validation_set(per_class=20, size=size, seed=recipe.seed + 1),
        recipe,
        num_classes=num_classes,
    )


def train(recipe: EmbeddedRecipe = RECIPE, out: str | Path | None = None) -> tuple[torch.nn.Module, EmbeddedRun]:
    """Train from scratch; returns (model, run) and saves to ``out`` if given (no default: the shipped weights are
    only replaced when asked for by path; under torchrun rank 0 saves)."""
    torch.manual_seed(recipe.seed)
    classes = sorted(PHOTOS)
    model = create_embedded_model(len(classes), drop_path_rate=0.1)
    run = train_on_photo_objects(model, recipe, len(classes))
    if out is not None and is_main_process():
        save_embedded_model(model, classes, out, **run.info(recipe))  # a patch adds no parameters: plain weights
    return model, run


@user_errors
def main(argv: list[str] | None = None) -> None:
    parser = embedded_parser("python -m tokenmerge.image.train_embedded", __doc__, RECIPE, DEFAULT_OUT, WEIGHTS)
    args = parser.parse_args(argv)
    _, run = train(recipe_from_args(args), out=args.out)
    if is_main_process():
        print(f"final validation accuracy {run.accuracy:.3f}; saved to {args.out}")


if __name__ == "__main__":
    main()
