"""AudioMAE's weighted sampling for unbalanced (multi-label) training sets such as AudioSet-2M.

A sample's weight is the sum, over its labels, of ``1000 / (count + 0.01)``, ``count`` the number of training
samples carrying that label (AudioMAE dataset/audioset/gen_weight.py:19-42), so rare classes are drawn about as
often as frequent ones. Each epoch draws ``epoch_samples`` indices with replacement in proportion to the weights
(main_finetune_as.py:295-307: ``WeightedRandomSampler`` with ``num_samples=epoch_len``; its ``--replacement False``
is parsed by ``type=bool`` as True); under torchrun every process makes the same draw, seeded by (seed, epoch), and
takes every world_size-th position of it from its rank (dataset.py:21-40, ``DistributedSamplerWrapper``), so the
processes' shares are distinct positions of one draw and together equal the one-process draw.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor
from torch.utils.data import Sampler

#: gen_weight.py:32: label_weight = 1000.0 / (label_count + 0.01).
LABEL_WEIGHT_SCALE, LABEL_COUNT_OFFSET = 1000.0, 0.01


def label_frequency_weights(targets: Sequence[int | Sequence[int]], num_classes: int) -> Tensor:
    """Per-sample weights from label frequencies (AudioMAE gen_weight.py:19-42).

    Args:
        targets: per sample, its class index (single-label) or its class indices (multi-label).
        num_classes: K.

    Returns:
        [N] float64: for each sample the sum over its labels of ``1000 / (count(label) + 0.01)``.
    """
    labels = [[target] if isinstance(target, int) else list(target) for target in targets]
    flat = torch.tensor([label for sample in labels for label in sample], dtype=torch.long)
    if len(flat) and (flat.min() < 0 or flat.max() >= num_classes):
        raise ValueError(f"A label is outside [0, {num_classes}); check num_classes and the index.")
    counts = torch.bincount(flat, minlength=num_classes).double()
    label_weight = LABEL_WEIGHT_SCALE / (counts + LABEL_COUNT_OFFSET)
    owner = torch.repeat_interleave(torch.arange(len(labels)), torch.tensor([len(s) for s in labels], dtype=torch.long))
    return torch.zeros(len(labels), dtype=torch.float64).index_add_(0, owner, label_weight[flat])


def check_sample_weights(weights: Tensor, num_samples: int) -> Tensor:
    """``weights`` as a float64 [N] tensor; raises a ``ValueError`` saying what is wrong with them."""
    weights = torch.as_tensor(weights, dtype=torch.float64)
    if weights.shape != (num_samples,):
        raise ValueError(
            f"sample_weights() returned weights of shape {tuple(weights.shape)}; expected one per training sample, "
            f"[{num_samples}]."
        )
    if not torch.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError("sample_weights() must be finite and non-negative, and not all zero.")
    return weights


class WeightedEpochSampler(Sampler[int]):
    """This process's share of each epoch's weighted draw of dataset indices.

    Args:
        weights: [N] non-negative sample weights (not necessarily normalized).
        epoch_samples: indices one epoch draws over all processes; rounded up to a multiple of ``world_size``
            so every process gets ``ceil(epoch_samples / world_size)``.
        world_size, rank: the processes and this one's rank.
        seed: with the epoch (:meth:`set_epoch`), seeds the draw; the same on every process.
    """

    def __init__(self, weights: Tensor, epoch_samples: int, world_size: int, rank: int, seed: int):
        self.weights = check_sample_weights(weights, len(weights))
        self.world_size, self.rank, self.seed, self.epoch = world_size, rank, seed, 0
        self.num_samples = math.ceil(epoch_samples / world_size)

    def set_epoch(self, epoch: int) -> None:
        """Draw epoch ``epoch``'s indices next."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        total = self.num_samples * self.world_size
        draw = torch.multinomial(self.weights, total, replacement=True, generator=generator)
        return iter(draw[self.rank :: self.world_size].tolist())
