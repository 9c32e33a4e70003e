"""Progress for long steps: tqdm bars on a terminal, widget bars in Jupyter, plain lines in a log file.

Nested tqdm bars written to a file (``make demo > log``) turn into carriage returns and escape codes.
:func:`progress` therefore draws a text bar only when stderr is a terminal and a widget bar (``tqdm.notebook``, with
the notebook extra's ipywidgets) in a Jupyter kernel; otherwise it prints one line per step (``desc 3/22: ...``)
and, for long inner loops, at most one line every ``interval`` seconds plus a final line.
``TOKENMERGE_PROGRESS=bars|widgets|lines|off`` overrides the choice. Under torchrun only rank 0 shows progress.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

from .distributed import is_main_process

T = TypeVar("T")

__all__ = ["progress", "progress_mode"]


def progress_mode() -> str:
    """ "widgets" in a Jupyter kernel with ipywidgets, "bars" when stderr is a terminal, else "lines";
    ``TOKENMERGE_PROGRESS`` (bars, widgets, lines, off) overrides; "off" in torchrun's processes other than rank 0."""
    if not is_main_process():
        return "off"
    mode = os.environ.get("TOKENMERGE_PROGRESS", "").strip().lower()
    if mode in ("bars", "widgets", "lines", "off"):
        return mode
    if _in_jupyter_kernel() and importlib.util.find_spec("ipywidgets") is not None:
        return "widgets"
    return "bars" if getattr(sys.stderr, "isatty", lambda: False)() else "lines"


def _in_jupyter_kernel() -> bool:
    """Whether this process is a Jupyter (IPython) kernel."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return shell is not None and hasattr(shell, "kernel")


def progress(
    iterable: Iterable[T],
    desc: str,
    total: int | None = None,
    *,
    leave: bool = True,
    unit: str = "it",
    every_step: bool = False,
    describe: Callable[[T], str] | None = None,
    interval: float = 30.0,
) -> Iterator[T]:
    """Iterate with progress shown on stderr.

    Args:
        iterable: what to iterate.
        desc: what is being done ("settings", "eval tome r=8", "timing").
        total: number of items (default ``len(iterable)`` when it has one).
        leave: keep the bar after it finishes (terminal only).
        unit: unit name for the bar.
        every_step: in line mode print one line per item (outer loops with few, long steps); otherwise a line at
            most every ``interval`` seconds and one at the end.
        describe: names an item in its line (every_step), e.g. ``lambda s: s.name``.
        interval: seconds between lines in line mode.
    """
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    mode = progress_mode()
    if mode == "bars":
        yield from tqdm(iterable, desc=desc, total=total, leave=leave, unit=unit, dynamic_ncols=True)
        return
    if mode == "widgets":
        from tqdm.notebook import tqdm as widget_bar

        yield from widget_bar(iterable, desc=desc, total=total, leave=leave, unit=unit)
        return
    if mode == "off":
        yield from iterable
        return
    start = last = time.perf_counter()
    count = 0
    of = f"/{total}" if total is not None else ""
    for item in iterable:
        if every_step:
            _line(f"{desc} {count + 1}{of}" + (f": {describe(item)}" if describe else ""))
        yield item
        count += 1
        now = time.perf_counter()
        if not every_step and now - last >= interval and (total is None or count < total):
            _line(f"{desc}: {count}{of} {unit} ({now - start:.0f} s)")
            last = now
    if not every_step:
        _line(f"{desc}: {count}{of} {unit} done in {time.perf_counter() - start:.1f} s")


def _line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
