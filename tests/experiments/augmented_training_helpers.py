"""The torchrun script of test_augmented_training_under_torchrun.py: CutMix, repeated augmentation and the weighted
sampler in one 2-process run, uninterrupted and interrupted + resumed from its mid-run checkpoint.

    python -m torch.distributed.run --nproc_per_node 2 -m tests.experiments.augmented_training_helpers OUT_DIR

Rank r writes ``OUT_DIR/rank{r}.json`` (the indices each run read, the shapes and distinct values of the inputs the
model saw) and ``OUT_DIR/{whole,resumed}_rank{r}.pt`` (its final weights). One process group serves all three
``train`` calls (``train`` uses a group it finds open).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import Dataset

from tokenmerge.experiments.training import TrainConfig, train

from .training_helpers import CLASSES, tiny_vit

SIZE = 24


class Interrupted(Exception):
    """Raised by the validation set of the interrupted run, on every rank at the same step."""


class Augmented(Dataset):
    """Image i [3, 32, 32] is the constant i plus fresh noise in [0, 0.5) on every read; label i % 3; the samples
    i >= 16 weigh nothing (never drawn). ``seen`` lists the indices read."""

    def __init__(self):
        self.seen: list[int] = []

    def __len__(self) -> int:
        return SIZE

    def __getitem__(self, i: int):
        self.seen.append(i)
        return torch.full((3, 32, 32), float(i)) + 0.5 * torch.rand(()), i % CLASSES

    def sample_weights(self) -> torch.Tensor:
        return (torch.arange(SIZE) < 16).double() * (1 + torch.arange(SIZE) % 3)


class Validation(Dataset):
    def __init__(self, interrupt: bool):
        self.interrupt = interrupt

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int):
        if self.interrupt:
            raise Interrupted
        return torch.full((3, 32, 32), float(i)), i % CLASSES


def run(out_dir: Path, interrupt: bool = False, resume: bool = False) -> tuple[torch.nn.Module, Augmented, list]:
    """6 steps of 4 drawn samples x 2 copies per process, CutMix on every batch, weighted epochs of 24 draws
    (3 steps); checkpoints every 2 steps, validation at step 3 and 6 (``interrupt``: stop at step 3)."""
    torch.manual_seed(0)
    model, data, seen_inputs = tiny_vit(), Augmented(), []
    model.register_forward_pre_hook(
        lambda module, args: (
            seen_inputs.append([list(args[0].shape), len(args[0][0].unique())]) if module.training else None
        )
    )
    config = TrainConfig(
        steps=6, batch_size=4, lr=3e-3, warmup_steps=1, cutmix_alpha=1.0, repeat_aug=2, weighted_sampler=True,
        epoch_samples=24, log_every=3, eval_every=3, checkpoint_every=2, out_dir=str(out_dir), resume=resume,
    )  # fmt: skip
    train(model, data, config, val_dataset=Validation(interrupt), progress=False)
    return model, data, seen_inputs


def main(out_dir: str) -> None:
    dist.init_process_group("gloo")
    rank, root = dist.get_rank(), Path(out_dir)
    whole, whole_data, inputs = run(root / "whole")
    try:
        run(root / "parts", interrupt=True)
        interrupted_at = None
    except Interrupted:
        interrupted_at = torch.load(root / "parts" / "train_state.pt", weights_only=True)["step"]
    dist.barrier()
    resumed, resumed_data, _ = run(root / "parts", resume=True)
    torch.save(whole.state_dict(), root / f"whole_rank{rank}.pt")
    torch.save(resumed.state_dict(), root / f"resumed_rank{rank}.pt")
    record = {"seen": whole_data.seen, "resumed_seen": resumed_data.seen, "inputs": inputs}
    record["interrupted_at"] = interrupted_at
    (root / f"rank{rank}.json").write_text(json.dumps(record))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
