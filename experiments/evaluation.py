"""Accuracy-vs-speed sweeps of Token Merging settings, for any patched model (every modality uses this).

For each setting (method, schedule, merge scope) a sweep reports the task metrics, agreement and KL
divergence with the unmerged model, throughput (interleaved rounds, median; the same fused attention for
every setting), FLOPs and the FLOPs-ideal speedup, the way the ToMe paper's tables pair accuracy with speed.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import Tensor, nn

from tokenmerge.core.adapter import ModelAdapter, ToMeHandle, temporary_patch
from tokenmerge.core.schedule import ScheduleSpec, clamp_note

from .cli import DataError, SettingError
from .comparison import comparison_note
from .data import (
    Batch,
    SampleNote,
    Unreadable,
    note_summary,
    notes_by_kind,
    quiet_skips,
    report_notes,
    report_skipped,
)
from .distributed import broadcast_from_main, current_context, gather_objects, shard_loader
from .environment import environment
from .flops import count_flops
from .metrics import classification_metrics
from .progress import progress
from .throughput import dtype_name, measure_interleaved, write_json

log = logging.getLogger(__name__)

Forward = Callable[[nn.Module, Tensor], Tensor]
Metrics = Callable[[Tensor, Tensor, Tensor | None], dict[str, float]]


@dataclass(frozen=True)
class Setting:
    """One point of a sweep: a reduction method, its schedule spec, (for grouped models) a merge scope, and the
    seed of the random baselines' draws (ToMe itself is deterministic)."""

    method: str = "tome"
    r: ScheduleSpec = 0
    merge_scope: str | None = None
    seed: int = 0

    @property
    def name(self) -> str:
        scope = f" {self.merge_scope}" if self.merge_scope else ""
        return f"{self.method} r={self.r}{scope}" + (f" seed={self.seed}" if self.seed else "")


@dataclass
class Predictions:
    """logits: [N, K] (log-probabilities when views are averaged); targets: [N] or [N, K]; skipped: unreadable files;
    notes: what the dataset noted about samples it read (e.g. videos shorter than one clip)."""

    logits: Tensor
    targets: Tensor
    skipped: list[Unreadable] = field(default_factory=list)
    notes: list[SampleNote] = field(default_factory=list)


def plain_forward(model: nn.Module, inputs: Tensor) -> Tensor:
    """inputs [B, ...] -> logits [B, K]."""
    return model(inputs)


@torch.inference_mode()
def predict(
    model: nn.Module,
    loader: Iterable[Batch],
    device: torch.device | str = "cpu",
    desc: str = "eval",
    forward: Forward = plain_forward,
    dtype: torch.dtype | None = None,
) -> Predictions:
    """Run ``forward(model, batch.inputs)`` over a loader of :class:`~tokenmerge.experiments.data.Batch`; logits on CPU.

    The random baselines draw per sample from the patch's ``seed`` (see :class:`ToMeConfig`), so their predictions
    do not depend on batching or on the number of processes. In a torchrun process group each
    process predicts its own shard of ``loader.dataset`` (every world_size-th sample, no padding) and every
    process returns all shards' predictions in rank order, so every sample counts exactly once (and so does every
    sample's note, ``batch.notes``). ``dtype`` casts floating-point inputs (the model must be in it already); None
    keeps them as the loader gives them.
    """
    ctx = current_context()
    model.eval()
    logits, targets, skipped, notes = [], [], [], []
    for batch in progress(shard_loader(loader, ctx), desc, leave=False, unit="batches"):
        skipped += batch.skipped
        notes += getattr(batch, "notes", [])
        if len(batch.targets):
            inputs = batch.inputs.to(device)
            if dtype is not None and inputs.is_floating_point():
                inputs = inputs.to(dtype)
            logits.append(forward(model, inputs).float().cpu())
            targets.append(batch.targets)
    if ctx.distributed:
        shards = gather_objects((logits, targets, skipped, notes), ctx)
        logits, targets, skipped, notes = ([part for shard in shards for part in shard[i]] for i in range(4))
    if not logits:
        first = f" (first: {skipped[0].path}: {skipped[0].error})" if skipped else ""
        raise DataError(
            f"No readable samples in the dataset: all {len(skipped)} files were skipped as unreadable{first}. "
            "Check that the data files are images/clips this loader can decode."
        )
    return Predictions(torch.cat(logits), torch.cat(targets), skipped, notes)


def _configure(handle: ToMeHandle, setting: Setting) -> None:
    handle.config.method, handle.config.r = setting.method, setting.r
    handle.config.merge_scope, handle.config.seed = setting.merge_scope, setting.seed


def _check_settings(handle: ToMeHandle, settings: list[Setting], num_tokens: int) -> dict[str, str]:
    """Configure every setting once before any work: a bad one fails now. Returns clamping notes by setting name."""
    notes = {}
    for setting in settings:
        try:
            _configure(handle, setting)
        except (TypeError, ValueError) as error:
            raise SettingError(f"{setting.name}: {error}") from None
        groups = handle.adapter.num_groups(handle.model, handle.merge_scope)
        note = clamp_note(setting.r, len(handle.adapter.blocks(handle.model)), num_tokens, handle.protected, groups)
        if note:
            if note not in notes.values():  # once per schedule, not per method and seed; an expected note, not a fault
                log.info("%s", note)
            notes[setting.name] = note
    _configure(handle, settings[0])
    return notes


def _cached_predictions(
    model: nn.Module,
    loader,
    device,
    forward: Forward,
    input_shape: tuple[int, ...],
    cache: Path | None,
    desc: str,
    dtype: torch.dtype,
) -> tuple[Predictions, int]:
    """A setting's predictions (computed in ``dtype``) and FLOPs: read from ``cache`` if an earlier run (or a job of
    this sweep) made them in the same dtype, else computed and, on rank 0, written there atomically (parallel jobs
    never read half a file). The file keeps the unreadable files and the sample notes with the predictions, so a
    resumed sweep reports them too; a file written before notes were kept is evaluated again."""
    if cache is not None and cache.is_file():
        saved = torch.load(cache, weights_only=True)
        if saved.get("dtype", "float32") == dtype_name(dtype) and "notes" in saved:
            log.info("%s: predictions read from %s", desc, cache)
            skipped = [Unreadable(path, error) for path, error in saved["skipped"]]
            notes = [SampleNote(path, note, detail) for path, note, detail in saved["notes"]]
            return Predictions(saved["logits"], saved["targets"], skipped, notes), int(saved["flops"])
        if "notes" not in saved:
            log.info("%s: %s predates sample notes (e.g. short videos); evaluating again", desc, cache)
        else:
            log.info("%s: %s holds %s predictions, not %s; evaluating again", desc, cache, saved.get("dtype"), dtype)
    preds = predict(model, loader, device, desc=desc, forward=forward, dtype=dtype)
    flops = count_flops(model, torch.zeros(1, *input_shape, device=device, dtype=dtype))
    if cache is not None and current_context().is_main:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        skipped = [[s.path, s.error] for s in preds.skipped]
        notes = [[n.path, n.note, n.detail] for n in preds.notes]
        saved = {"logits": preds.logits, "targets": preds.targets, "skipped": skipped, "notes": notes, "flops": flops}
        torch.save(saved | {"dtype": dtype_name(dtype)}, partial)
        partial.replace(cache)
    return preds, flops


def accuracy_dtype(model: nn.Module, input_shape: tuple[int, ...], device, dtype: torch.dtype) -> torch.dtype:
    """``dtype`` if the model runs in it on ``device`` (one trial forward), else float32 with a warning.

    The model is left in the dtype returned."""
    model.to(dtype)
    try:
        with torch.inference_mode():
            model(torch.zeros(1, *input_shape, device=device, dtype=dtype))
        return dtype
    except (RuntimeError, NotImplementedError) as error:
        log.warning("accuracy in float32: the model does not run in %s on %s (%s)", dtype, device, error)
        model.to(torch.float32)
        return torch.float32


def _prediction_file(folder: Path | None, setting: Setting) -> Path | None:
    if folder is None:
        return None
    return folder / (setting.name.replace(" ", "_").replace("=", "").replace(",", "_").replace("/", "_") + ".pt")


def sweep_settings(
    model: nn.Module,
    adapter: ModelAdapter,
    loader: Iterable[Batch],
    settings: list[Setting],
    input_shape: tuple[int, ...],
    *,
    prop_attn: bool = True,
    device: torch.device | str = "cpu",
    throughput_batch: int = 32,
    throughput_rounds: int = 5,
    throughput_threads: int | None = None,
    dtype: torch.dtype = torch.float32,
    forward: Forward = plain_forward,
    metrics: Metrics = classification_metrics,
    reference_cache: str | Path | None = None,
    prediction_dir: str | Path | None = None,
) -> list[dict]:
    """Evaluate every setting on ``model``; one row per setting, the unmerged reference (r=0) first.

    The model is patched for the sweep and left as it was before (see :func:`tokenmerge.core.temporary_patch`).
    Every setting is checked against the model before the first batch is read; settings that ask for more
    merging than a block can do are clamped, and their rows say so (``note``, ``schedule``, ``tokens_per_layer``;
    the table's footnotes, and one INFO log line per distinct note).
    Unreadable files and the samples the dataset noted (e.g. videos shorter than one clip) are reported once,
    after the first pass; every row lists them (``skipped``: paths; ``noted``: paths by kind of note).

    Args:
        model: the model to evaluate.
        adapter: what is particular to its family (the modality's adapter).
        loader: evaluation batches.
        settings: methods, schedules and scopes; "tome r=0" is always added first as the reference.
        input_shape: one input without the batch dimension, e.g. (3, 224, 224) or (3, 16, 224, 224).
        prop_attn: proportional attention for every merged setting.
        device: where to run.
        throughput_batch, throughput_rounds: batch size and interleaved rounds of the speed measurement.
        throughput_threads: CPU threads while timing (one thread is steadier on small shared machines).
        dtype: model and input dtype for the predictions (where the model runs in it on ``device``, else float32;
            rows say which in ``accuracy_dtype``) and for the speed measurement (``speed_dtype``).
        forward: how to get logits from a batch of inputs (e.g. averaging several views).
        metrics: (logits, targets, reference logits) -> named scores.
        reference_cache: a file for the unmerged model's predictions: read if it exists, else written. The jobs
            of a multirun sweep over one model and dataset share it, so the reference pass runs once.
        prediction_dir: a folder that keeps every setting's predictions (one file per setting, written as each
            finishes): a sweep that was interrupted resumes with the settings it finished. The caller makes sure
            the folder belongs to this model and data (the demo clears it when they change).

    Under torchrun (inside the caller's :func:`tokenmerge.experiments.distributed.distributed_context`) every process
    evaluates a shard of the data and gets every row with exact metrics over all samples (``world_size`` in
    each row); rank 0 alone measures throughput and writes the reference cache.
    """
    reference = Setting("tome", 0)
    settings = [reference] + [s for s in settings if s != reference]
    cache = None if reference_cache is None else Path(reference_cache)
    folder = None if prediction_dir is None else Path(prediction_dir)
    ctx = current_context()
    with temporary_patch(model, adapter, 0, prop_attn=prop_attn) as handle, quiet_skips():
        model_dtype = next(model.parameters()).dtype
        num_tokens = adapter.embed(model, torch.zeros(1, *input_shape, device=device)).shape[1]
        notes = _check_settings(handle, settings, num_tokens)
        try:
            scored_in = accuracy_dtype(model, input_shape, device, dtype)
            evaluated: list[tuple[Predictions, int]] = []
            for setting in progress(settings, "settings", every_step=True, describe=lambda s: s.name):
                _configure(handle, setting)
                is_reference = setting == reference
                file = cache if is_reference and cache is not None else _prediction_file(folder, setting)
                desc = f"eval {setting.name}" + (" (unmerged)" if is_reference else "")
                evaluated.append(
                    _cached_predictions(model, loader, device, forward, input_shape, file, desc, scored_in)
                )
                if is_reference and ctx.is_main:
                    report_skipped(evaluated[0][0].skipped)
                    report_notes(evaluated[0][0].notes)
            speed = None
            if ctx.is_main:  # one process times, alone on its device; the others wait for its numbers
                batch = torch.randn(throughput_batch, *input_shape, device=device, dtype=dtype)
                # speed does not depend on the random draws: each setting is timed once, with seed 0
                timed = {replace(s, seed=0).name: replace(s, seed=0) for s in settings}
                fns = {name: _configured_call(handle, s, batch) for name, s in timed.items()}
                model.to(dtype)
                speed = measure_interleaved(
                    fns,
                    batch_size=throughput_batch,
                    device=device,
                    dtype=dtype,
                    rounds=throughput_rounds,
                    desc=f"timing {len(fns)} settings, round",
                    threads=throughput_threads,
                )
            speed = broadcast_from_main(speed, ctx)
        finally:
            model.to(model_dtype)
        (base_preds, base_flops), base_speed = evaluated[0], speed[reference.name].samples_per_s
        rows = []
        for setting, (preds, flops) in zip(settings, evaluated):
            _configure(handle, setting)
            measured = speed[replace(setting, seed=0).name]
            rows.append(
                {
                    "method": setting.method,
                    "r": list(setting.r) if isinstance(setting.r, tuple) else setting.r,
                    "merge_scope": handle.merge_scope,
                    "seed": setting.seed,
                    "schedule": handle.schedule(num_tokens),
                    "tokens_per_layer": handle.tokens_per_layer(num_tokens),
                    "final_tokens": handle.tokens_per_layer(num_tokens)[-1],
                    "note": notes.get(setting.name, ""),
                    **metrics(preds.logits, preds.targets, base_preds.logits),
                    "samples": len(preds.targets),
                    "skipped": [s.path for s in preds.skipped],
                    "noted": {kind: [n.path for n in items] for kind, items in notes_by_kind(preds.notes).items()},
                    "samples_per_s": measured.samples_per_s,
                    "speedup": measured.samples_per_s / base_speed,
                    "gflops": flops / 1e9,
                    "ideal_speedup": base_flops / flops,
                    "throughput_batch": throughput_batch,
                    "device": measured.device,
                    "processor": measured.processor,
                    "accuracy_dtype": dtype_name(scored_in),
                    "speed_dtype": measured.dtype,
                    "threads": measured.threads,
                    "world_size": ctx.world_size,
                }
            )
        return rows


#: Row fields that :func:`average_over_seeds` averages (the others are the same for every seed).
SEED_AVERAGED = ("top1", "top5", "mAP", "agreement", "kl", "samples_per_s", "speedup")


def average_over_seeds(rows: list[dict]) -> list[dict]:
    """Merge the rows of one setting evaluated with several seeds (random baselines) into one row of means.

    A merged row keeps the first row's other fields, lists the ``seeds`` and each seed's score in
    ``top1_by_seed``/``agreement_by_seed`` (``mAP_by_seed``), and drops ``seed``; rows are kept in first-seen order.
    """
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["method"], str(row["r"]), row["merge_scope"]), []).append(row)
    merged = []
    for group in groups.values():
        row = {key: value for key, value in group[0].items() if key != "seed"}
        row["seeds"] = [member.get("seed", 0) for member in group]
        for key in SEED_AVERAGED:
            if key in row:
                values = [member[key] for member in group]
                row[key] = sum(values) / len(values)
                if key in ("top1", "mAP", "agreement"):
                    row[f"{key}_by_seed"] = values
        merged.append(row)
    return merged


def _configured_call(handle: ToMeHandle, setting: Setting, batch: Tensor) -> Callable[[], Tensor]:
    def run():
        _configure(handle, setting)
        handle.config.seed = None  # timing draws from the global generator: no per-sample seeding in the timed path
        return handle.model(batch)

    return run


def seeds_note(rows: list[dict]) -> str:
    """A line saying which methods' rows are means over seeds (see :func:`average_over_seeds`), or ""."""
    seeded = {row["method"]: row["seeds"] for row in rows if len(row.get("seeds", ())) > 1}
    if not seeded:
        return ""
    seeds = ", ".join(map(str, next(iter(seeded.values()))))
    return f"{', '.join(seeded)}: mean over seeds {seeds} (each seed's scores are in results.json)"


def format_table(rows: list[dict]) -> str:
    """A fixed-width text table of sweep rows (top-1/top-5 or mAP, whichever the rows have).

    A clamped setting's r is marked ``*`` and explained under the table (the schedule it really ran); the seeds,
    how ToMe compares with the baselines (:func:`~tokenmerge.experiments.comparison.comparison_note`) and the
    number of skipped unreadable files are given; with rows of several models (a combined multirun table) a
    model column is added.
    """
    score = "mAP" if "mAP" in rows[0] else "top1"
    models = list(dict.fromkeys(row.get("model", "") for row in rows))
    model_width = max(len(m) for m in models) + 2 if len(models) > 1 else 0
    header = (f"{'model':<{model_width}}" if model_width else "") + (
        f"{'method':<13}{'scope':>10}{'r':>10}{'tokens':>7}{score:>7}{'top5' if score == 'top1' else '':>7}"
        f"{'agree':>7}{'KL':>8}{'samp/s':>9}{'speedup':>8}{'ideal':>7}"
    )
    lines, notes = [header, "-" * len(header)], []
    for row in rows:
        second = f"{100 * row['top5']:>7.1f}" if score == "top1" else " " * 7
        r = str(row["r"]) + ("*" if row.get("note") else "")
        if row.get("note") and row["note"] not in notes:
            notes.append(row["note"])
        lines.append(
            (f"{row.get('model', ''):<{model_width}}" if model_width else "")
            + f"{row['method']:<13}{row['merge_scope']:>10}{r:>10}{row['final_tokens']:>7}"
            f"{100 * row[score]:>7.1f}{second}{100 * row['agreement']:>7.1f}{row['kl']:>8.3f}"
            f"{row['samples_per_s']:>9.1f}{row['speedup']:>7.2f}x{row['ideal_speedup']:>6.2f}x"
        )
    lines += [f"* {note}" for note in notes]
    seeded = seeds_note(rows)
    if seeded:
        lines.append(seeded)
    compared = comparison_note(rows)
    if compared:
        lines.append(compared + ".")
    skipped = len(rows[0].get("skipped", []))
    if skipped:
        lines.append(f"{skipped} unreadable file{'s' if skipped != 1 else ''} skipped (listed in results.json)")
    lines += [note_summary(kind, count) for kind, count in noted_counts(rows[0]).items()]
    return "\n".join(lines)


def noted_counts(row: dict) -> dict[str, int]:
    """A row's noted samples counted by kind of note (``row["noted"]``: paths by kind), e.g. ``{"shorter than one
    clip, last frame repeated": 2}``; {} for none."""
    return {kind: len(paths) for kind, paths in (row.get("noted") or {}).items() if paths}


LIST_COLUMNS = ("skipped", "noted", "schedule", "tokens_per_layer")


def write_results(rows: list[dict], out_dir: str | Path, stem: str = "results", **metadata) -> tuple[Path, Path]:
    """Write rows as JSON (with metadata, the count of skipped files, the counts of noted samples by kind and
    :func:`~tokenmerge.experiments.environment.environment`: versions, processor, threads, command) and CSV; returns
    both paths.

    The CSV has one column per scalar field, the schedule as text, the number of skipped files and the number of
    noted samples.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    skipped = len(rows[0].get("skipped", [])) if rows else 0
    noted = noted_counts(rows[0]) if rows else {}
    json_path = write_json(
        rows, out_dir / f"{stem}.json", **metadata, skipped_files=skipped, noted_files=noted, environment=environment()
    )
    csv_path = out_dir / f"{stem}.csv"
    columns = [k for k in rows[0] if k not in LIST_COLUMNS] + ["schedule", "skipped", "noted"]
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            schedule = " ".join(map(str, row.get("schedule", [])))
            counts = {"skipped": len(row.get("skipped", [])), "noted": sum(noted_counts(row).values())}
            writer.writerow({**row, "schedule": schedule, **counts})
    return json_path, csv_path
