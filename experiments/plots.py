"""Plots of sweep results: accuracy (and agreement with the unmerged model) against measured speed.

Importing this module leaves matplotlib's backend alone, so plots show inline in Jupyter; command-line entry points
that only write files call :func:`use_file_backend` first.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
from matplotlib.figure import Figure


def use_file_backend() -> None:
    """For command-line entry points that only write image files: draw with Agg (no window or display needed)."""
    matplotlib.use("Agg")


LABELS = {"tome": "ToMe (bipartite soft matching)", "random_merge": "random merging", "random_drop": "random dropping"}
#: Where a point's label may go (offset in points), tried in order until it overlaps no label placed before.
OFFSETS = [(4, 4), (4, -11), (-26, 4), (-26, -11), (4, 12), (4, -19), (-26, 12), (-26, -19), (12, -4), (-34, -4)]


def speed_context(row: dict) -> str:
    """ "batch 64, cpu: AMD EPYC 7B13, 1 thread": how a sweep row's throughput was measured."""
    device = row["device"]
    processor = row.get("processor")
    where = f"{device}: {processor}" if device == "cpu" and processor else device
    threads = row.get("threads")
    extra = f", {threads} thread{'s' if threads != 1 else ''}" if device == "cpu" and threads else ""
    return f"batch {row['throughput_batch']}, {where}{extra}"


#: One marker per line of a plot, so methods stay apart without colour.
MARKERS = ("o", "s", "^", "D", "v", "P")


def accuracy_speed_figure(rows: list[dict], title: str = "") -> Figure:
    """Two panels, top-1 (or mAP) and agreement (%) against samples/s, one marker series per method (and merge
    scope), ToMe's points labelled with r where the label does not overlap another.

    Points are not joined: measured throughput is noisy, and a line through the r values in order would zigzag
    where two neighbouring r run at nearly the same speed. How speed was measured is in the title, once.
    """
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    scoped = len({row.get("merge_scope") for row in rows}) > 1
    line_of = lambda row: f"{row['method']} {row['merge_scope']}" if scoped else row["method"]  # noqa: E731
    methods = list(dict.fromkeys(line_of(row) for row in rows[1:]))
    reference = rows[0]
    score, score_label = ("mAP", "mAP (%)") if "mAP" in reference else ("top1", "top-1 accuracy (%)")
    labelled: dict = {}
    for ax, metric, label in ((axes[0], score, score_label), (axes[1], "agreement", "agreement with r=0 (%)")):
        labelled[ax] = []
        for index, method in enumerate(methods):
            points = [reference] + [r for r in rows[1:] if line_of(r) == method]
            xs, ys = [p["samples_per_s"] for p in points], [100 * p[metric] for p in points]
            name, _, scope = method.partition(" ")
            seeds = len(points[-1].get("seeds", ()))
            notes = ([scope] if scope else []) + ([f"mean of {seeds} seeds"] if seeds > 1 else [])
            ax.plot(
                xs,
                ys,
                linestyle="none",
                marker=MARKERS[index % len(MARKERS)],
                label=LABELS.get(name, name) + (f" ({', '.join(notes)})" if notes else ""),
            )
            if name == "tome" and scope != "frame":
                labelled[ax] += [(f"r={p['r']}", x, y) for p, x, y in zip(points, xs, ys)]
        ax.set_xlabel("throughput (samples/s)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    measured = f"throughput measured at {speed_context(reference)}"
    fig.suptitle(f"{title}\n{measured}" if title else measured, fontsize=11)
    fig.tight_layout()
    for ax, labels in labelled.items():  # after the layout, so the label boxes are where they will be drawn
        _place_labels(fig, ax, labels)
    return fig


def _place_labels(fig: Figure, ax, labels: list[tuple[str, float, float]]) -> None:
    """Annotate points, moving a label around its point until it overlaps no earlier one; else leave it out."""
    renderer = fig.canvas.get_renderer()
    placed, seen = [], set()
    for text, x, y in labels:
        if (text, x, y) in seen:  # the shared r=0 reference
            continue
        seen.add((text, x, y))
        for offset in OFFSETS:
            note = ax.annotate(text, (x, y), textcoords="offset points", xytext=offset, fontsize=7)
            box = note.get_window_extent(renderer).expanded(1.05, 1.1)
            if not any(box.overlaps(other) for other in placed):
                placed.append(box)
                break
            note.remove()


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Save ``fig`` as a PNG at ``path`` (folders created) and close it; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_accuracy_vs_speed(rows: list[dict], path: str | Path, title: str = "") -> Path:
    """Draw :func:`accuracy_speed_figure` and save it as a PNG; returns the path."""
    return save_figure(accuracy_speed_figure(rows, title), path)


def speedup_figure(rows: list[dict], title: str = "") -> Figure:
    """Measured speedup against r, one line per series (method, scope), with the FLOPs-ideal speedup dashed.

    Args:
        rows: benchmark rows with "r", "series", "speedup" and "ideal_speedup"; r=0 rows (the baseline) start
            every line at 1.0x.
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    series = [s for s in dict.fromkeys(row["series"] for row in rows) if s != "baseline"]
    for i, name in enumerate(series):
        points = sorted((row["r"], row["speedup"], row["ideal_speedup"]) for row in rows if row["series"] == name)
        r_values, measured, ideal = (
            [0, *(p[0] for p in points)],
            [1, *(p[1] for p in points)],
            [1, *(p[2] for p in points)],
        )
        color = f"C{i}"
        ax.plot(r_values, measured, marker="o", color=color, label=f"{name} (measured)")
        ax.plot(r_values, ideal, linestyle="--", color=color, alpha=0.6, label=f"{name} (FLOPs-ideal)")
    ax.set_xlabel("r (tokens merged per block)")
    ax.set_ylabel("speedup over the unpatched model")
    if rows:
        row = rows[0]
        where = f"{row['device']}, {row['dtype']}, batch {row['batch']}" + (", compiled" if row.get("compiled") else "")
        ax.set_title(f"{title}\n{where}" if title else where, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_speedup_vs_r(rows: list[dict], path: str | Path, title: str = "") -> Path:
    """Draw :func:`speedup_figure` and save it as a PNG; returns the path."""
    return save_figure(speedup_figure(rows, title), path)
