"""Train the embedded moving-objects video ViT (fixed seed; reproduces ``video/weights/clip_vit.safetensors``).

    python -m tokenmerge.video.train_embedded [--steps 2500] [--out outputs/video_embedded/clip_vit.safetensors]

AdamW with warm-up and cosine decay, label smoothing, fresh random clips every step
(``moving_objects.RandomClips``). Reports validation accuracy on held-out clips as it goes, and at the end the
time controls: the same model on clips whose frames are shuffled and on one frame repeated. ``--input single``
trains the single-frame control model (every clip replaced by one of its frames, repeated).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from tokenmerge.experiments.checkpoint import save_safetensors
from tokenmerge.experiments.metrics import model_accuracy

from .embedded import create_embedded_model
from .moving_objects import CLASSES, RandomClips, validation_clips

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


def train(
    steps: int = 2500,
    batch_size: int = 32,
    lr: float = 1e-3,
    weight_decay: float = 0.05,
    warmup: int = 150,
    seed: int = 0,
    inputs: str = "clips",
    eval_every: int = 250,
    workers: int = 1,
    out: str | Path | None = DEFAULT_OUT,
) -> tuple[torch.nn.Module, dict[str, float]]:
    """Train from scratch; returns (model, time controls on the validation clips) and saves to ``out`` if given.

    Args:
        inputs: "clips" (the model) or "single" (the single-frame control: each training clip is one frame repeated).
    """
    if inputs not in ("clips", "single"):
        raise ValueError(f"inputs must be 'clips' or 'single'; got {inputs!r}.")
    torch.manual_seed(seed)
    model = create_embedded_model(len(CLASSES), drop_path_rate=0.1)
    data = RandomClips(steps * batch_size, seed=seed)
    loader = DataLoader(data, batch_size=batch_size, num_workers=workers, drop_last=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = lambda step: min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(step / steps, 1.0)))  # noqa: E731
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    val_clips, val_labels = validation_clips(per_class=20, seed=seed + 1)
    if inputs == "single":
        val_clips = single_frame(val_clips, torch.Generator().manual_seed(seed))
    model.train()
    start, acc = time.time(), 0.0
    progress = tqdm(loader, total=steps, desc="train", mininterval=10)
    for step, (clips, labels) in enumerate(progress):
        if inputs == "single":
            clips = single_frame(clips)
        loss = loss_fn(model(clips), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            acc = model_accuracy(model, val_clips, val_labels)
            progress.write(f"step {step + 1}: loss {loss.item():.3f}  val acc {acc:.3f}  ({time.time() - start:.0f} s)")
    model.eval()
    controls = time_controls(model, *validation_clips(per_class=20, seed=seed + 1))
    if out is not None:
        info = dict(
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            seed=seed,
            inputs=inputs,
            val_accuracy=acc,
            time_controls=controls,
            train_seconds=round(time.time() - start),
        )
        save_safetensors(model, out, arch=model.arch, classes=list(CLASSES), info=info)
    return model, controls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--input", default="clips", choices=["clips", "single"], help="'single': single-frame control")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--out", default=str(DEFAULT_OUT), help="where to save (the shipped weights are not overwritten)"
    )
    args = parser.parse_args()
    _, controls = train(
        args.steps, args.batch_size, args.lr, seed=args.seed, inputs=args.input, workers=args.workers, out=args.out
    )
    print(f"validation accuracy: {controls}; saved to {args.out}")


if __name__ == "__main__":
    main()
