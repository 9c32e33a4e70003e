"""A tiny ToMe-patched timm ViT, a separable synthetic image set, and the torchrun script of test_training.py.

    python -m torch.distributed.run --nproc_per_node 2 tests/experiments/training_helpers.py OUT_DIR

Each rank writes ``rank{r}.json`` (samples it read, token counts entering the last block, history, metrics,
where the callback ran) and ``weights_rank{r}.pt`` into OUT_DIR; rank 0's ``train`` writes its checkpoint there.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
from timm.models.vision_transformer import VisionTransformer
from torch.utils.data import Dataset

CLASSES = 3


def tiny_vit(drop_path_rate: float = 0.0) -> VisionTransformer:
    """32x32 images, 8x8 patches: 16 patch tokens and a class token; dim 32, 2 blocks, 3 classes."""
    return VisionTransformer(
        img_size=32,
        patch_size=8,
        embed_dim=32,
        depth=2,
        num_heads=2,
        num_classes=CLASSES,
        drop_path_rate=drop_path_rate,
    )


class SeparableImages(Dataset):
    """Noise images [3, 32, 32] whose class c has channel c brightened; the same sample for the same index.

    ``seen`` lists the indices read (in this process; use num_workers=0).
    """

    def __init__(self, size: int, seed: int = 0, multilabel: bool = False):
        self.size, self.seed, self.multilabel, self.seen = size, seed, multilabel, []

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int):
        self.seen.append(index)
        generator = torch.Generator().manual_seed(self.seed * 100_003 + index)
        label = index % CLASSES
        image = torch.randn(3, 32, 32, generator=generator) * 0.5
        image[label] += 1.0
        if self.multilabel:
            target = torch.zeros(CLASSES)
            target[label] = 1.0
            return image, target
        return image, label


def record_tokens_entering(block: torch.nn.Module) -> list[int]:
    """A list that collects the token count N of every input [B, N, C] to a timm ``block``.

    Hooks ``block.norm1``: the patched forward drives the block's submodules, not ``block`` itself.
    """
    counts: list[int] = []
    block.norm1.register_forward_hook(lambda module, args, output: counts.append(args[0].shape[1]))
    return counts


def main(out_dir: str) -> None:
    """Train the patched tiny ViT for 4 steps on 2 ranks (gloo) and record what each rank saw."""
    import torch.distributed as dist

    from tokenmerge.experiments.training import TrainConfig, train
    from tokenmerge.image import apply_patch

    rank = int(os.environ["RANK"])
    torch.manual_seed(rank)  # different initial weights per rank: DDP must broadcast rank 0's
    model = tiny_vit()
    apply_patch(model, r=2)
    tokens = record_tokens_entering(model.blocks[1])
    data, evaluated_on = SeparableImages(32), []

    def evaluate(trained: torch.nn.Module) -> dict[str, float]:
        evaluated_on.append(rank)
        return {"weight_sum": sum(p.double().sum().item() for p in trained.parameters())}

    config = TrainConfig(steps=4, batch_size=4, lr=1e-3, warmup_steps=1, log_every=2, eval_every=4, out_dir=out_dir)
    result = train(model, data, config, val_dataset=SeparableImages(11, seed=1), evaluate=evaluate, progress=False)
    record = {
        "rank": rank,
        "world_size": int(os.environ["WORLD_SIZE"]),
        "seen": data.seen,
        "tokens_last_block": sorted(set(tokens)),
        "history": result.history,
        "metrics": result.metrics,
        "evaluated_on": evaluated_on,
        "paths": {k: str(v) for k, v in result.paths.items()},
        "group_left_open": dist.is_initialized(),
    }
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(record))
    torch.save(model.state_dict(), Path(out_dir, f"weights_rank{rank}.pt"))


if __name__ == "__main__":
    main(sys.argv[1])
