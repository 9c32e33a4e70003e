"""Accuracy-vs-speed evaluation of Token Merging on image classifiers.

For each setting (method, schedule) it reports top-1, top-5, agreement and KL divergence with the
unmerged model, throughput (interleaved rounds, median; same fused attention for every setting),
FLOPs and the FLOPs-ideal speedup, the way the ToMe paper's tables pair accuracy with speed.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import torch
from timm.data import resolve_data_config
from torch import nn
from tqdm.auto import tqdm

from tokenmerge.core import classification_metrics, count_flops, measure_interleaved, write_json
from tokenmerge.core.schedule import ScheduleSpec

from .data import Unreadable
from .patch import ToMeHandle, apply_patch


@dataclass(frozen=True)
class Setting:
    """One point of a sweep: a reduction method and its schedule spec."""

    method: str = "tome"
    r: ScheduleSpec = 0

    @property
    def name(self) -> str:
        return f"{self.method} r={self.r}"


@dataclass
class Predictions:
    """logits: [N, K]; targets: [N]; skipped: unreadable files."""

    logits: torch.Tensor
    targets: torch.Tensor
    skipped: list[Unreadable] = field(default_factory=list)


@torch.inference_mode()
def predict(
    model: nn.Module, loader, device: torch.device | str = "cpu", desc: str = "eval", seed: int = 0
) -> Predictions:
    """Run the model over a loader of :class:`~tokenmerge.image.data.Batch`; collects logits on CPU.

    ``seed`` fixes the random baselines' draws so repeated evaluations agree.
    """
    torch.manual_seed(seed)
    model.eval()
    logits, targets, skipped = [], [], []
    for batch in tqdm(loader, desc=desc, leave=False):
        skipped += batch.skipped
        if len(batch.targets):
            logits.append(model(batch.images.to(device)).float().cpu())
            targets.append(batch.targets)
    if not logits:
        raise ValueError(f"No readable images in the dataset ({len(skipped)} files skipped as unreadable).")
    return Predictions(torch.cat(logits), torch.cat(targets), skipped)


def sweep(
    model: nn.Module,
    loader,
    settings: list[Setting],
    *,
    prop_attn: bool = True,
    device: torch.device | str = "cpu",
    throughput_batch: int = 32,
    throughput_rounds: int = 5,
    throughput_threads: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> list[dict]:
    """Evaluate every setting; returns one row per setting (first row: the unmerged reference).

    Args:
        model: an unpatched timm ViT (it is patched during the sweep and restored afterwards).
        loader: evaluation batches (see :func:`tokenmerge.image.data.build_eval_loader`).
        settings: methods and schedules to evaluate; "r=0" with method "tome" is always added first.
        prop_attn: proportional attention for every merged setting.
        device: where to run.
        throughput_batch, throughput_rounds: batch size and interleaved rounds of the speed measurement.
        throughput_threads: CPU threads while timing (one thread is steadier on small shared machines);
            None keeps the current setting.
        dtype: model and input dtype for the speed measurement.
    """
    reference = Setting("tome", 0)
    settings = [reference] + [s for s in settings if s != reference]
    input_size = resolve_data_config({}, model=model)["input_size"]  # what the loader's transform produces
    handle: ToMeHandle = apply_patch(model, r=0, prop_attn=prop_attn)
    model_dtype, threads = next(model.parameters()).dtype, torch.get_num_threads()
    try:
        evaluated: list[tuple[Predictions, int]] = []
        for setting in tqdm(settings, desc="settings"):
            handle.config.method, handle.config.r = setting.method, setting.r
            preds = predict(model, loader, device, desc=setting.name)
            evaluated.append((preds, count_flops(model, torch.zeros(1, *input_size, device=device))))
        batch = torch.randn(throughput_batch, *input_size, device=device, dtype=dtype)
        fns = {s.name: _configured_call(handle, s, batch) for s in settings}
        model.to(dtype)
        torch.set_num_threads(throughput_threads or threads)
        speed = measure_interleaved(
            fns, batch_size=throughput_batch, device=device, dtype=dtype, rounds=throughput_rounds
        )
    finally:
        torch.set_num_threads(threads)
        model.to(model_dtype)
        handle.remove()
    (base_preds, base_flops), base_speed = evaluated[0], speed[reference.name].samples_per_s
    num_tokens = model.patch_embed.num_patches + handle.protected
    rows = []
    for setting, (preds, flops) in zip(settings, evaluated):
        handle.config.r = setting.r
        measured = speed[setting.name]
        rows.append(
            {
                "method": setting.method,
                "r": list(setting.r) if isinstance(setting.r, tuple) else setting.r,
                "schedule": handle.schedule(num_tokens),
                "final_tokens": handle.tokens_per_layer(num_tokens)[-1],
                **classification_metrics(preds.logits, preds.targets, base_preds.logits),
                "samples": len(preds.targets),
                "skipped": [s.path for s in preds.skipped],
                "images_per_s": measured.samples_per_s,
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


def _configured_call(handle: ToMeHandle, setting: Setting, batch: torch.Tensor):
    def run():
        torch.manual_seed(0)
        handle.config.method, handle.config.r = setting.method, setting.r
        return handle.model(batch)

    return run


def format_table(rows: list[dict]) -> str:
    """A fixed-width text table of sweep rows."""
    header = (
        f"{'method':<13}{'r':>10}{'tokens':>7}{'top1':>7}{'top5':>7}{'agree':>7}{'KL':>8}{'img/s':>9}"
        f"{'speedup':>8}{'ideal':>7}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row['method']:<13}{str(row['r']):>10}{row['final_tokens']:>7}{100 * row['top1']:>7.1f}"
            f"{100 * row['top5']:>7.1f}{100 * row['agreement']:>7.1f}{row['kl']:>8.3f}{row['images_per_s']:>9.1f}"
            f"{row['speedup']:>7.2f}x{row['ideal_speedup']:>6.2f}x"
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
