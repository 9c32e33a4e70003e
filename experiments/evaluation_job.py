"""One evaluation job of any modality: the model and data it names, the sweep, the table and the result files.

Each modality's ``run_evaluation`` checks its config and says how to build its model and loader; this module
does the rest the same way for all of them, in one process or under torchrun (every process evaluates a
shard, metrics are exact over all samples, only rank 0 prints and writes).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from .checkpoint import UnreadableCheckpoint
from .cli import DataError, SettingError
from .distributed import distributed_context, process_device
from .evaluation import Setting, format_table, write_results
from .validation import DTYPES

Sweep = Callable[..., list[dict]]


def run_evaluation_job(
    cfg: dict,
    out_dir: str | Path,
    setting: Setting,
    load_model: Callable[[], nn.Module],
    build_loader: Callable[[nn.Module], tuple[object, object]],
    sweep: Sweep,
    reference_cache: str | Path | None = None,
) -> list[dict]:
    """Evaluate the unmerged model and ``setting``; rank 0 prints the table and writes results.json/csv.

    Args:
        cfg: the checked ``eval`` config as a dict (seed, device, dtype, tome, throughput, model.name).
        out_dir: where results.json and results.csv go.
        setting: the merged setting (the sweep adds the unmerged reference first).
        load_model: builds the model (on the CPU; moved to the process's device here).
        build_loader: model -> (what the data is, for the results: a path or a name; the loader).
        sweep: the modality's sweep, called as ``sweep(model, loader, [setting], prop_attn=, device=,
            throughput_batch=, throughput_rounds=, dtype=, reference_cache=)``.
        reference_cache: the multirun's shared unmerged predictions (see ``core.hydra_cli.job_paths``).

    Returns:
        The rows (the same on every process).
    """
    with distributed_context() as ctx:
        device = process_device(cfg["device"], ctx)
        torch.manual_seed(cfg["seed"])
        model = _loaded(load_model, cfg["model"]).to(device)
        source, loader = build_loader(model)
        rows = sweep(
            model,
            loader,
            [setting],
            prop_attn=cfg["tome"]["prop_attn"],
            device=device,
            throughput_batch=cfg["throughput"]["batch_size"],
            throughput_rounds=cfg["throughput"]["rounds"],
            dtype=DTYPES[cfg["dtype"]],
            reference_cache=reference_cache,
        )
        if ctx.is_main:
            print(format_table(rows))
            write_results(rows, out_dir, model=cfg["model"]["name"], data=str(source), config=cfg, rank=ctx.rank)
    return rows


def _loaded(load_model: Callable[[], nn.Module], model: dict) -> nn.Module:
    """``load_model()``; a checkpoint that cannot be read or does not fit the model is one line naming it."""
    where = f"model.checkpoint={model.get('checkpoint')}" if model.get("checkpoint") else f"model {model.get('name')}"
    try:
        return load_model()
    except UnreadableCheckpoint as error:
        raise DataError(f"{where}: {error}") from None
    except ValueError as error:
        raise SettingError(f"{where} does not fit the model: {error}") from None
