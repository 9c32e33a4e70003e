"""Plots of sweep results: accuracy (and agreement with the unmerged model) against measured speed."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LABELS = {"tome": "ToMe (bipartite soft matching)", "random_merge": "random merging", "random_drop": "random dropping"}


def plot_accuracy_vs_speed(rows: list[dict], path: str | Path, title: str = "") -> Path:
    """Two panels, top-1 and agreement (%) against samples/s, one line per method (and merge scope), points
    labelled with r. Sweeps with several scopes (video) get one line per method and scope."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    scoped = len({row.get("merge_scope") for row in rows}) > 1
    line_of = lambda row: f"{row['method']} {row['merge_scope']}" if scoped else row["method"]  # noqa: E731
    methods = list(dict.fromkeys(line_of(row) for row in rows[1:]))
    reference = rows[0]
    for ax, metric, label in (
        (axes[0], "top1", "top-1 accuracy (%)"),
        (axes[1], "agreement", "agreement with r=0 (%)"),
    ):
        for method in methods:
            points = [reference] + [r for r in rows[1:] if line_of(r) == method]
            xs, ys = [p["samples_per_s"] for p in points], [100 * p[metric] for p in points]
            name, _, scope = method.partition(" ")
            ax.plot(xs, ys, marker="o", label=LABELS.get(name, name) + (f" ({scope})" if scope else ""))
            if name == "tome" and scope != "frame":
                for p, x, y in zip(points, xs, ys):
                    ax.annotate(f"r={p['r']}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xlabel(f"throughput (samples/s, batch {reference['throughput_batch']}, {reference['device']})")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
