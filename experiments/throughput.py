"""Throughput measurement: warm-up discarded, CUDA synchronized, median of repeats, results as JSON.

Follows the measurement protocol of the ToMe paper (throughput in samples/s at a fixed batch size) and
this project's notes on noisy shared machines: report the median of several timed repeats.
"""

from __future__ import annotations

import functools
import json
import platform
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .progress import progress


@dataclass
class ThroughputResult:
    """One throughput measurement. ``samples_per_s`` is the median over ``repeats`` timed runs.

    ``device`` is "cpu" or the GPU model; ``processor`` is the CPU model (the host's, on a GPU run too).
    """

    samples_per_s: float
    seconds_per_batch: list[float]
    batch_size: int
    device: str
    dtype: str
    threads: int
    warmup: int
    repeats: int
    processor: str = ""
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """A flat JSON-ready dict; ``extra`` (e.g. model name, r) is merged in."""
        out = asdict(self)
        out.update(out.pop("extra"))
        return out


def device_name(device: torch.device | str) -> str:
    """A readable device name: the GPU model on CUDA, else the device type ("cpu"); see :func:`processor_name`."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type


@functools.cache
def processor_name() -> str:
    """The CPU model ("AMD EPYC 7B13", from /proc/cpuinfo on Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return " ".join(line.partition(":")[2].split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_call(fn: Callable[[], object], device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def dtype_name(dtype: torch.dtype) -> str:
    """torch.float16 -> "float16" (how results name a dtype)."""
    return str(dtype).removeprefix("torch.")


def _result(
    times: list[float], batch_size: int, device: torch.device, dtype: torch.dtype, warmup: int, extra: dict
) -> ThroughputResult:
    return ThroughputResult(
        samples_per_s=batch_size / statistics.median(times),
        seconds_per_batch=times,
        batch_size=batch_size,
        device=device_name(device),
        dtype=dtype_name(dtype),
        threads=torch.get_num_threads(),
        warmup=warmup,
        repeats=len(times),
        processor=processor_name(),
        extra=extra,
    )


def measure_throughput(
    fn: Callable[[], object],
    *,
    batch_size: int,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    warmup: int = 3,
    repeats: int = 10,
    **extra,
) -> ThroughputResult:
    """Time ``fn()`` (one batch) ``repeats`` times after ``warmup`` untimed calls.

    Args:
        fn: runs one batch; it is called without arguments under ``torch.inference_mode``.
        batch_size: samples per call, to turn seconds into samples/s.
        device: where ``fn`` runs (CUDA is synchronized around each timed call).
        dtype: recorded in the result.
        warmup, repeats: untimed and timed calls.
        **extra: recorded as is (model name, r, schedule, ...).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1; got {repeats}.")
    device = torch.device(device)
    with torch.inference_mode():
        for _ in range(warmup):
            fn()
        times = [_time_call(fn, device) for _ in range(repeats)]
    return _result(times, batch_size, device, dtype, warmup, extra)


def measure_interleaved(
    fns: dict[str, Callable[[], object]],
    *,
    batch_size: int,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    warmup: int = 2,
    rounds: int = 7,
    desc: str | None = None,
    threads: int | None = None,
    **extra,
) -> dict[str, ThroughputResult]:
    """Time several variants in interleaved rounds (A, B, C, A, B, C, ...), so drifting machine load hits
    all alike; each variant's throughput is the median of its rounds.

    Args:
        fns: name -> callable running one batch.
        batch_size, device, dtype, warmup, **extra: as in :func:`measure_throughput`; warm-up calls per variant.
        rounds: timed calls per variant.
        desc: show progress over the rounds under this name (see :func:`tokenmerge.experiments.progress.progress`).
        threads: CPU threads while timing (restored after; one thread is what the benchmarks use on small shared
            machines); None keeps torch's. Each result records the count in ``threads``.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1; got {rounds}.")
    device = torch.device(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads or before)
        with torch.inference_mode():
            for fn in fns.values():
                for _ in range(warmup):
                    fn()
            steps = range(rounds) if desc is None else progress(range(rounds), desc, leave=False, every_step=True)
            for _ in steps:
                for name, fn in fns.items():
                    times[name].append(_time_call(fn, device))
            return {
                name: _result(t, batch_size, device, dtype, warmup, {"variant": name, **extra})
                for name, t in times.items()
            }
    finally:
        torch.set_num_threads(before)


def write_json(results: Iterable[ThroughputResult | dict], path: str | Path, **metadata) -> Path:
    """Write results (and metadata such as the command or torch version) to a JSON file; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [r.to_dict() if isinstance(r, ThroughputResult) else r for r in results]
    payload = {"torch": torch.__version__, **metadata, "results": rows}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
