"""Accuracy-vs-speed sweeps of Token Merging settings, for any patched model (every modality uses this).

For each setting (method, schedule, merge scope) a sweep reports the task metrics, agreement and KL
divergence with the unmerged model, throughput (interleaved rounds, median; the same fused attention for
every setting), FLOPs and the FLOPs-ideal speedup, the way the ToMe paper's tables pair accuracy with speed.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .adapter import ModelAdapter, ToMeHandle, temporary_patch
from .data import Batch, Unreadable
from .flops import count_flops
from .metrics import classification_metrics
from .schedule import ScheduleSpec
from .throughput import measure_interleaved, write_json

Forward = Callable[[nn.Module, Tensor], Tensor]
Metrics = Callable[[Tensor, Tensor, Tensor | None], dict[str, float]]


@dataclass(frozen=True)
class Setting:
    """One point of a sweep: a reduction method, its schedule spec and (for grouped models) a merge scope."""

    method: str = "tome"
    r: ScheduleSpec = 0
    merge_scope: str | None = None

    @property
    def name(self) -> str:
        return f"{self.method} r={self.r}" + (f" {self.merge_scope}" if self.merge_scope else "")


@dataclass
class Predictions:
    """logits: [N, K] (log-probabilities when views are averaged); targets: [N] or [N, K]; skipped: unreadable files."""

    logits: Tensor
    targets: Tensor
    skipped: list[Unreadable] = field(default_factory=list)


def plain_forward(model: nn.Module, inputs: Tensor) -> Tensor:
    """inputs [B, ...] -> logits [B, K]."""
    return model(inputs)


@torch.inference_mode()
def predict(
    model: nn.Module,
    loader: Iterable[Batch],
    device: torch.device | str = "cpu",
    desc: str = "eval",
    seed: int = 0,
    forward: Forward = plain_forward,
) -> Predictions:
    """Run ``forward(model, batch.inputs)`` over a loader of :class:`~tokenmerge.core.data.Batch`; logits on CPU.

    ``seed`` fixes the random baselines' draws so repeated evaluations agree.
    """
    torch.manual_seed(seed)
    model.eval()
    logits, targets, skipped = [], [], []
    for batch in tqdm(loader, desc=desc, leave=False):
        skipped += batch.skipped
        if len(batch.targets):
            logits.append(forward(model, batch.inputs.to(device)).float().cpu())
            targets.append(batch.targets)
    if not logits:
        raise ValueError(f"No readable samples in the dataset ({len(skipped)} files skipped as unreadable).")
    return Predictions(torch.cat(logits), torch.cat(targets), skipped)


def _configure(handle: ToMeHandle, setting: Setting) -> None:
    handle.config.method, handle.config.r = setting.method, setting.r
    handle.config.merge_scope = setting.merge_scope


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
) -> list[dict]:
    """Evaluate every setting on ``model``; one row per setting, the unmerged reference (r=0) first.

    The model is patched for the sweep and left as it was before (see :func:`tokenmerge.core.temporary_patch`).

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
        dtype: model and input dtype for the speed measurement.
        forward: how to get logits from a batch of inputs (e.g. averaging several views).
        metrics: (logits, targets, reference logits) -> named scores.
    """
    reference = Setting("tome", 0)
    settings = [reference] + [s for s in settings if s != reference]
    with temporary_patch(model, adapter, 0, prop_attn=prop_attn) as handle:
        model_dtype, threads = next(model.parameters()).dtype, torch.get_num_threads()
        try:
            evaluated: list[tuple[Predictions, int]] = []
            for setting in tqdm(settings, desc="settings"):
                _configure(handle, setting)
                preds = predict(model, loader, device, desc=setting.name, forward=forward)
                evaluated.append((preds, count_flops(model, torch.zeros(1, *input_shape, device=device))))
            batch = torch.randn(throughput_batch, *input_shape, device=device, dtype=dtype)
            fns = {s.name: _configured_call(handle, s, batch) for s in settings}
            model.to(dtype)
            torch.set_num_threads(throughput_threads or threads)
            speed = measure_interleaved(
                fns, batch_size=throughput_batch, device=device, dtype=dtype, rounds=throughput_rounds
            )
        finally:
            torch.set_num_threads(threads)
            model.to(model_dtype)
        (base_preds, base_flops), base_speed = evaluated[0], speed[reference.name].samples_per_s
        num_tokens = adapter.embed(model, torch.zeros(1, *input_shape, device=device)).shape[1]
        rows = []
        for setting, (preds, flops) in zip(settings, evaluated):
            _configure(handle, setting)
            measured = speed[setting.name]
            rows.append(
                {
                    "method": setting.method,
                    "r": list(setting.r) if isinstance(setting.r, tuple) else setting.r,
                    "merge_scope": handle.merge_scope,
                    "schedule": handle.schedule(num_tokens),
                    "final_tokens": handle.tokens_per_layer(num_tokens)[-1],
                    **metrics(preds.logits, preds.targets, base_preds.logits),
                    "samples": len(preds.targets),
                    "skipped": [s.path for s in preds.skipped],
                    "samples_per_s": measured.samples_per_s,
                    "speedup": measured.samples_per_s / base_speed,
                    "gflops": flops / 1e9,
                    "ideal_speedup": base_flops / flops,
                    "throughput_batch": throughput_batch,
                    "device": measured.device,
                    "dtype": measured.dtype,
                    "threads": measured.threads,
                }
            )
        return rows


def _configured_call(handle: ToMeHandle, setting: Setting, batch: Tensor) -> Callable[[], Tensor]:
    def run():
        torch.manual_seed(0)
        _configure(handle, setting)
        return handle.model(batch)

    return run


def format_table(rows: list[dict]) -> str:
    """A fixed-width text table of sweep rows (top-1/top-5 or mAP, whichever the rows have)."""
    score = "mAP" if "mAP" in rows[0] else "top1"
    header = (
        f"{'method':<13}{'scope':>10}{'r':>10}{'tokens':>7}{score:>7}{'top5' if score == 'top1' else '':>7}"
        f"{'agree':>7}{'KL':>8}{'samp/s':>9}{'speedup':>8}{'ideal':>7}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        second = f"{100 * row['top5']:>7.1f}" if score == "top1" else " " * 7
        lines.append(
            f"{row['method']:<13}{row['merge_scope']:>10}{str(row['r']):>10}{row['final_tokens']:>7}"
            f"{100 * row[score]:>7.1f}{second}{100 * row['agreement']:>7.1f}{row['kl']:>8.3f}"
            f"{row['samples_per_s']:>9.1f}{row['speedup']:>7.2f}x{row['ideal_speedup']:>6.2f}x"
        )
    return "\n".join(lines)


def write_results(rows: list[dict], out_dir: str | Path, stem: str = "results", **metadata) -> tuple[Path, Path]:
    """Write rows as JSON (with metadata) and CSV; returns both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = write_json(rows, out_dir / f"{stem}.json", **metadata)
    csv_path = out_dir / f"{stem}.csv"
    columns = [k for k in rows[0] if k not in ("skipped", "schedule")] + ["skipped"]
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "skipped": len(row["skipped"])})
    return json_path, csv_path
