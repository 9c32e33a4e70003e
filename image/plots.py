"""Plots of sweep results: accuracy (and agreement with the unmerged model) against measured speed."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LABELS = {"tome": "ToMe (bipartite soft matching)", "random_merge": "random merging", "random_drop": "random dropping"}


def plot_accuracy_vs_speed(rows: list[dict], path: str | Path, title: str = "") -> Path:
    """Two panels, top-1 and agreement (%) against images/s, one line per method, points labelled with r."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    methods = list(dict.fromkeys(row["method"] for row in rows))
    reference = rows[0]
    for ax, metric, label in (
        (axes[0], "top1", "top-1 accuracy (%)"),
        (axes[1], "agreement", "agreement with r=0 (%)"),
    ):
        for method in methods:
            points = [reference] + [r for r in rows[1:] if r["method"] == method]
            xs, ys = [p["samples_per_s"] for p in points], [100 * p[metric] for p in points]
            ax.plot(xs, ys, marker="o", label=LABELS.get(method, method))
            if method == "tome":
                for p, x, y in zip(points, xs, ys):
                    ax.annotate(f"r={p['r']}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xlabel(f"throughput (images/s, batch {reference['throughput_batch']}, {reference['device']})")
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
