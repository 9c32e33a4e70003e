"""torch.distributed under torchrun: the process group, each process's device, exact sharding and reductions.

``torchrun --nproc_per_node N script.py`` starts N processes with RANK, WORLD_SIZE and LOCAL_RANK in their
environment. :func:`distributed_context` then initializes the process group (NCCL on CUDA, gloo on CPU) and
destroys it on exit; in a plain process (no such environment) it creates no group, and every helper here
returns its input unchanged, so the same code runs on one CPU and on many GPUs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Subset

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class DistributedContext:
    """Where this process runs. ``distributed`` is False in a plain process (no process group)."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    distributed: bool

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes checkpoints and logs."""
        return self.rank == 0


def default_device(local_rank: int = 0) -> torch.device:
    """``cuda:LOCAL_RANK`` when CUDA is available, else the CPU."""
    return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")


def is_main_process() -> bool:
    """Whether this process is rank 0 of a torchrun launch (or a plain process), also before a process group
    exists or after it is destroyed (read from torchrun's RANK variable)."""
    return os.environ.get("RANK", "0") == "0"


def process_device(requested: str | torch.device, ctx: DistributedContext) -> torch.device:
    """The device this process runs on: ``requested`` ("cpu", "cuda", "cuda:1"), except that under torchrun a
    CUDA request means this process's own GPU (``cuda:LOCAL_RANK``)."""
    device = torch.device(requested)
    if ctx.distributed and device.type == "cuda":
        return torch.device("cuda", ctx.local_rank)
    return device


@contextmanager
def distributed_context() -> Iterator[DistributedContext]:
    """Join torchrun's process group for the duration of a ``with`` block.

    A group the caller initialized already is used as it is and left open; a group created here is destroyed
    on exit (also after an exception). Without torchrun's environment no group is created.

    Raises:
        ValueError: only part of RANK, WORLD_SIZE and LOCAL_RANK is set.
    """
    present = [name for name in TORCHRUN_VARIABLES if name in os.environ]
    if present and len(present) < len(TORCHRUN_VARIABLES):
        raise ValueError(
            f"Found {present} but not all of {list(TORCHRUN_VARIABLES)} in the environment; start distributed "
            "runs with torchrun (python -m torch.distributed.run), or unset them to run in one process."
        )
    if (dist.is_available() and dist.is_initialized()) or not present:
        yield current_context()
        return
    local_rank = int(os.environ["LOCAL_RANK"])
    device = default_device(local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    try:
        yield DistributedContext(dist.get_rank(), dist.get_world_size(), local_rank, device, True)
    finally:
        dist.destroy_process_group()


def current_context() -> DistributedContext:
    """The context of an already initialized process group, or of a plain process; creates nothing.

    Code that runs inside a caller's :func:`distributed_context` (evaluation, writing results) asks this where it
    runs instead of passing the context through every call.
    """
    if dist.is_available() and dist.is_initialized():
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        return DistributedContext(dist.get_rank(), dist.get_world_size(), local_rank, default_device(local_rank), True)
    return DistributedContext(0, 1, 0, default_device(), False)


def shard_loader(loader: DataLoader, ctx: DistributedContext) -> DataLoader:
    """The same loader over this process's shard of its dataset (:func:`shard_indices`); unchanged in one process.

    Batch size, workers, collate function and pinning are kept; the shard is read in dataset order.

    Raises:
        TypeError: in a process group, ``loader`` is not a ``DataLoader`` over a map-style dataset.
    """
    if not ctx.distributed:
        return loader
    if not isinstance(loader, DataLoader) or not hasattr(loader.dataset, "__len__"):
        raise TypeError(
            f"Distributed evaluation shards a torch DataLoader over a map-style dataset; got {type(loader).__name__}. "
            "Build the loader with the modality's build_*_loader, or run in one process."
        )
    return DataLoader(
        Subset(loader.dataset, shard_indices(len(loader.dataset), ctx)),
        batch_size=loader.batch_size,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
    )


def sum_across_ranks(values: torch.Tensor, ctx: DistributedContext) -> torch.Tensor:
    """The element-wise sum of ``values`` (any shape, on ``ctx.device``) over all processes; a new tensor."""
    total = values.clone()
    if ctx.distributed:
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total


def gather_objects(obj: object, ctx: DistributedContext) -> list:
    """Every process's ``obj`` (picklable, e.g. CPU tensors), in rank order, on every process."""
    if not ctx.distributed:
        return [obj]
    gathered: list = [None] * ctx.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_from_main(obj: object, ctx: DistributedContext) -> object:
    """Rank 0's ``obj`` (picklable) on every process; the other processes' ``obj`` is ignored."""
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shard_indices(num_samples: int, ctx: DistributedContext) -> range:
    """This process's share of ``range(num_samples)``: every world_size-th index from its rank.

    Unlike ``DistributedSampler`` (which pads with repeated samples so that shards have equal length), each
    sample is in exactly one shard, so metrics over the gathered shards are exact.
    """
    return range(ctx.rank, num_samples, ctx.world_size)
