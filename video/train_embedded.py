"""Train the embedded moving-objects video ViT (fixed seed; reproduces ``video/weights/clip_vit.safetensors``).

    python -m tokenmerge.video.train_embedded [--steps 3000] [--out outputs/video_embedded/clip_vit.safetensors]

The recipe and loop are the shared ones (:mod:`tokenmerge.experiments.embedded_training`), with fresh random
clips every step (``moving_objects.RandomClips``) and validation on held-out clips as it goes. At the end it
reports the time controls: the same model on clips whose frames are shuffled and on one frame repeated.
``--input single`` trains the single-frame control model (every clip replaced by one of its frames, repeated).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset, TensorDataset

from tokenmerge.experiments.checkpoint import save_safetensors
from tokenmerge.experiments.cli import user_errors
from tokenmerge.experiments.distributed import is_main_process
from tokenmerge.experiments.embedded_training import (
    EmbeddedRecipe,
    EmbeddedRun,
    embedded_parser,
    recipe_from_args,
    train_embedded,
)
from tokenmerge.experiments.metrics import model_accuracy

from .embedded import WEIGHTS, create_embedded_model
from .moving_objects import CLASSES, RandomClips, validation_clips
from .patch import apply_patch

DEFAULT_OUT = Path("outputs/video_embedded/clip_vit.safetensors")


def single_frame(clips: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """[B, 3, T, H, W] -> the same shape, every clip one of its own frames (random per clip) repeated T times."""
    frames = torch.randint(clips.shape[2], (clips.shape[0],), generator=generator)
    picked = clips[torch.arange(clips.shape[0]), :, frames]  # [B, 3, H, W]
    return picked[:, :, None].expand_as(clips).contiguous()


def shuffled_frames(clips: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """[B, 3, T, H, W] -> the same frames in a random order (one permutation per clip)."""
    order = torch.stack([torch.randperm(clips.shape[2], generator=generator) for _ in range(clips.shape[0])])
    return clips[torch.arange(clips.shape[0])[:, None], :, order].permute(0, 2, 1, 3, 4)


def time_controls(model: torch.nn.Module, clips: Tensor, labels: Tensor, seed: int = 0) -> dict[str, float]:
    """Accuracy on the clips as they are, with frames shuffled, and with one frame repeated."""
    g = torch.Generator().manual_seed(seed)
    return {
        "clips": model_accuracy(model, clips, labels),
        "shuffled_frames": model_accuracy(model, shuffled_frames(clips, g), labels),
        "single_frame": model_accuracy(model, single_frame(clips, g), labels),
    }


class SingleFrameClips(Dataset):
    """``dataset`` with every clip [3, T, H, W] replaced by one of its frames (random, fixed per index) repeated."""

    def __init__(self, dataset: Dataset, seed: int = 0):
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        clip, label = self.dataset[index]
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        return single_frame(clip[None], generator)[0], label


RECIPE = EmbeddedRecipe(steps=2500, batch_size=32)


def train(
    recipe: EmbeddedRecipe = RECIPE, inputs: str = "clips", out: str | Path | None = DEFAULT_OUT
) -> tuple[torch.nn.Module, EmbeddedRun, dict[str, float]]:
    """Train from scratch; returns (model, run, time controls on the validation clips) and saves to ``out``.

    Args:
        inputs: "clips" (the model) or "single" (the single-frame control: each training clip is one frame repeated).
    """
    if inputs not in ("clips", "single"):
        raise ValueError(f"inputs must be 'clips' or 'single'; got {inputs!r}.")
    torch.manual_seed(recipe.seed)
    model = create_embedded_model(len(CLASSES), drop_path_rate=0.1)
    if recipe.tome_r:
        apply_patch(model, r=recipe.tome_r)
    train_set: Dataset = RandomClips(recipe.steps * recipe.batch_size, seed=recipe.seed)
    val_clips, val_labels = validation_clips(per_class=20, seed=recipe.seed + 1)
    val_set = TensorDataset(val_clips, val_labels)
    if inputs == "single":
        train_set, val_set = SingleFrameClips(train_set, recipe.seed), SingleFrameClips(val_set, recipe.seed + 1)
    run = train_embedded(model, train_set, val_set, recipe, num_classes=len(CLASSES))
    controls = time_controls(model, val_clips, val_labels)
    if out is not None and is_main_process():
        info = run.info(recipe, inputs=inputs, time_controls=controls)
        save_safetensors(model, out, arch=model.arch, classes=list(CLASSES), info=info)  # a patch adds no parameters
    return model, run, controls


@user_errors
def main(argv: list[str] | None = None) -> None:
    parser = embedded_parser("python -m tokenmerge.video.train_embedded", __doc__, RECIPE, DEFAULT_OUT, WEIGHTS)
    parser.add_argument("--input", default="clips", choices=["clips", "single"], help="'single': single-frame control")
    args = parser.parse_args(argv)
    _, run, controls = train(recipe_from_args(args), inputs=args.input, out=args.out)
    if is_main_process():
        print(f"final validation accuracy {run.accuracy:.3f}, time controls {controls}; saved to {args.out}")


if __name__ == "__main__":
    main()
