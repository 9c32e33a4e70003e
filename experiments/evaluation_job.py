"""One evaluation job of any modality: the model and data it names, the sweep, the table and the result files.

Each modality's ``run_evaluation`` checks its config and says how to build its model and loader; this module
does the rest the same way for all of them, in one process or under torchrun (every process evaluates a
shard, metrics are exact over all samples, only rank 0 prints and writes).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Subset

from .checkpoint import UnreadableCheckpoint
from .cli import DataError, SettingError
from .data import notes_text
from .distributed import distributed_context, process_device
from .evaluation import Setting, format_table, noted_counts, write_results
from .validation import DTYPES

Sweep = Callable[..., list[dict]]
log = logging.getLogger(__name__)


def sample_counts(loader, rows: list[dict], data: dict) -> dict:
    """How many samples the run evaluated against how many the index lists and the paper's set has.

    Returns ``{"evaluated", "listed", "selected", "skipped", "noted", "paper", "paper_set"}``: ``listed`` is the
    index's length (None if the loader has no map-style dataset), ``selected`` what ``data.max_samples`` kept of it,
    ``noted`` the evaluated samples the dataset noted, counted by kind (e.g. ``{"shorter than one clip, last frame
    repeated": 2}``; their paths are the rows' ``noted``), ``paper`` and ``paper_set`` the ``data.paper_samples`` /
    ``data.paper_set`` of a paper experiment (None otherwise).
    """
    dataset = getattr(loader, "dataset", None)
    selected = len(dataset) if hasattr(dataset, "__len__") else None
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    listed = len(dataset) if hasattr(dataset, "__len__") else None
    return {
        "evaluated": rows[0]["samples"],
        "listed": listed,
        "selected": selected,
        "skipped": len(rows[0].get("skipped", [])),
        "noted": noted_counts(rows[0]),
        "paper": data.get("paper_samples"),
        "paper_set": data.get("paper_set"),
    }


def counts_line(counts: dict) -> str:
    """One line for the end of a run: ``samples: evaluated 9 of 10 listed in the index (1 unreadable, skipped;
    2 shorter than one clip, last frame repeated; max_samples kept 10); the paper's set has 19148 (...)``."""
    line = f"samples: evaluated {counts['evaluated']}"
    if counts["listed"] is not None:
        line += f" of {counts['listed']} listed in the index"
    notes = []
    if counts["skipped"]:
        notes.append(f"{counts['skipped']} unreadable, skipped")
    if counts.get("noted"):
        notes.append(notes_text(counts["noted"]))
    if counts["selected"] is not None and counts["selected"] != counts["listed"]:
        notes.append(f"data.max_samples kept {counts['selected']}")
    line += f" ({'; '.join(notes)})" if notes else ""
    if counts["paper"]:
        line += f"; the paper's set has {counts['paper']}"
        line += f" ({counts['paper_set']})" if counts["paper_set"] else ""
        if counts["evaluated"] != counts["paper"]:
            line += f": {counts['paper'] - counts['evaluated']:+d} samples, so scores are not the paper's set's"
    return line


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

    At the end rank 0 prints how many samples were evaluated against the index and the paper's set, and how many
    the dataset noted (e.g. videos shorter than one clip) (:func:`sample_counts`, also ``samples`` in results.json),
    with a warning when files were skipped.

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
            counts = sample_counts(loader, rows, cfg.get("data") or {})
            print(format_table(rows))
            metadata = dict(model=cfg["model"]["name"], data=str(source), config=cfg, rank=ctx.rank)
            write_results(rows, out_dir, **metadata, samples=counts)
            print(counts_line(counts))
            if counts["skipped"]:
                skipped = counts["skipped"]
                log.warning(
                    "%d of the %s listed files could not be read and were NOT evaluated (listed in %s)",
                    skipped,
                    counts["listed"] if counts["listed"] is not None else "?",
                    Path(out_dir) / "results.json",
                )
                print(f"WARNING: {skipped} unreadable file{'s' if skipped != 1 else ''} skipped: see results.json")
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
