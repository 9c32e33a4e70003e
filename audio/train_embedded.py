"""Train the embedded spoken-words SpectrogramViTs (fixed seeds; reproduces ``audio/weights/*.safetensors``).

    python -m tokenmerge.audio.train_embedded                      # stage 1: no merging
    python -m tokenmerge.audio.train_embedded --init outputs/audio_embedded/speech_vit.safetensors \\
        --tome-r 8 --steps 600 --lr 3e-4 --out outputs/audio_embedded/speech_vit_tome.safetensors   # stage 2

AdamW with warm-up and cosine decay, label smoothing, stochastic depth, SpecAugment, fresh noisy clips every
step (``spoken_words.SpokenWordsDataset``, training voices). Accuracy is reported on clips of the held-out
validation voices. ``--tome-r`` trains with merging on (proportional attention, size-weighted pooling), as the
ToMe paper fine-tunes its audio model; ``--init`` starts from saved weights.
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

from tokenmerge.experiments.checkpoint import load_state_dict_exactly, read_state_dict, save_safetensors
from tokenmerge.experiments.metrics import model_accuracy

from .embedded import create_embedded_model
from .patch import apply_patch
from .spoken_words import WORDS, SpokenWordsDataset

DEFAULT_OUT = Path("outputs/audio_embedded/speech_vit.safetensors")


def validation_set(size: int, seed: int, utterances_per_word: int = 50) -> tuple[Tensor, Tensor]:
    """Clips of the validation voices as features [size, 1, 128, 128] and labels [size] (no SpecAugment)."""
    data = SpokenWordsDataset(size, seed=seed, split="val", train=False, utterances_per_word=utterances_per_word)
    items = [data[i] for i in range(size)]
    return torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items])


def train(
    steps: int = 2500,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 0.05,
    warmup: int = 150,
    seed: int = 0,
    tome_r: int = 0,
    init: str | Path | None = None,
    eval_every: int = 250,
    workers: int = 1,
    utterances_per_word: int = 200,
    out: str | Path | None = DEFAULT_OUT,
) -> tuple[torch.nn.Module, float]:
    """Train (from scratch or ``init``); returns (model, validation accuracy) and saves to ``out`` if given.

    ``utterances_per_word`` sizes the bank of clean training utterances (validation uses at most 50 per word).
    """
    torch.manual_seed(seed)
    model = create_embedded_model(len(WORDS), drop_path_rate=0.1)
    if init is not None:
        load_state_dict_exactly(model, read_state_dict(init), source=f"initial weights {init}")
    if tome_r:
        apply_patch(model, r=tome_r)
    data = SpokenWordsDataset(
        steps * batch_size, seed=seed, split="train", train=True, utterances_per_word=utterances_per_word
    )
    loader = DataLoader(data, batch_size=batch_size, num_workers=workers, drop_last=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = lambda step: min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(step / steps, 1.0)))  # noqa: E731
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    val_features, val_labels = validation_set(400, seed=seed + 1, utterances_per_word=min(50, utterances_per_word))
    model.train()
    start, acc = time.time(), 0.0
    progress = tqdm(loader, total=steps, desc="train", mininterval=10)
    for step, (features, labels) in enumerate(progress):
        loss = loss_fn(model(features), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            acc = model_accuracy(model, val_features, val_labels, batch=200)
            progress.write(f"step {step + 1}: loss {loss.item():.3f}  val acc {acc:.3f}  ({time.time() - start:.0f} s)")
    model.eval()
    if out is not None:
        info = dict(
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            seed=seed,
            tome_r=tome_r,
            init=None if init is None else Path(init).name,
            val_accuracy=acc,
            train_seconds=round(time.time() - start),
        )
        save_safetensors(model, out, arch=model.arch, classes=list(WORDS), info=info)  # a patch adds no parameters
    return model, acc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tome-r", type=int, default=0, help="train with merging (tokens merged per block)")
    parser.add_argument("--init", default=None, help="start from these weights (.safetensors)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--out", default=str(DEFAULT_OUT), help="where to save (the shipped weights are not overwritten)"
    )
    args = parser.parse_args()
    _, acc = train(
        args.steps,
        args.batch_size,
        args.lr,
        seed=args.seed,
        tome_r=args.tome_r,
        init=args.init,
        workers=args.workers,
        out=args.out,
    )
    print(f"validation accuracy {acc:.3f}; saved to {args.out}")


if __name__ == "__main__":
    main()
