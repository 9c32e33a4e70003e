"""Train the embedded rotary-position ViT (fixed seed; reproduces ``image/weights/photo_rope_vit.safetensors``).

    python -m tokenmerge.image.train_rope_embedded [--steps 800] [--out PATH]

It starts from the embedded ViT's weights (``image/weights/photo_vit.safetensors``: same patch embedding, blocks and
head; its absolute position embedding is left out, so the model must learn positions from the rotation), then
trains with the shared recipe and data of ``train_embedded`` (fresh random photo objects every step, validation on
held-out-stripe images). The default output is outside the package; pass ``--out image/weights/...`` to replace
the shipped weights.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tokenmerge.experiments.checkpoint import load_state_dict_exactly
from tokenmerge.experiments.cli import user_errors
from tokenmerge.experiments.distributed import is_main_process
from tokenmerge.experiments.embedded_training import EmbeddedRecipe, EmbeddedRun, embedded_parser, recipe_from_args

from .embedded import load_embedded_model
from .rope_embedded import WEIGHTS, create_rope_model, save_rope_model
from .train_embedded import train_on_photo_objects

DEFAULT_OUT = Path("results/train_embedded/photo_rope_vit.safetensors")
RECIPE = EmbeddedRecipe(steps=800, batch_size=64, lr=5e-4, warmup=100, eval_every=200)
#: Keys of the embedded ViT that the RoPE model has no place for.
DROPPED_KEYS = ("pos_embed",)


def initial_model() -> tuple[torch.nn.Module, list[str]]:
    """The RoPE model with the embedded ViT's weights (its absolute position embedding left out); and the classes."""
    start = load_embedded_model()
    model = create_rope_model(len(start.classes), drop_path_rate=0.1)
    state = {k: v for k, v in start.model.state_dict().items() if k not in DROPPED_KEYS}
    load_state_dict_exactly(model, state, source="the embedded ViT's weights")
    return model, start.classes


def train(recipe: EmbeddedRecipe = RECIPE, out: str | Path | None = None) -> tuple[torch.nn.Module, EmbeddedRun]:
    """Fine-tune from the embedded ViT; returns (model, run) and saves to ``out`` if given (rank 0 under torchrun)."""
    torch.manual_seed(recipe.seed)
    model, classes = initial_model()
    run = train_on_photo_objects(model, recipe, len(classes))
    if out is not None and is_main_process():
        save_rope_model(model, classes, out, started_from="photo_vit.safetensors", **run.info(recipe))
    return model, run


@user_errors
def main(argv: list[str] | None = None) -> None:
    parser = embedded_parser("python -m tokenmerge.image.train_rope_embedded", __doc__, RECIPE, DEFAULT_OUT, WEIGHTS)
    args = parser.parse_args(argv)
    _, run = train(recipe_from_args(args), out=args.out)
    if is_main_process():
        print(f"final validation accuracy {run.accuracy:.3f}; saved to {args.out}")


if __name__ == "__main__":
    main()
