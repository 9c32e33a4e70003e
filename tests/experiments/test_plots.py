"""The accuracy-vs-throughput plot: point labels never overlap, and the axis names the device and the CPU model."""

import itertools

from tokenmerge.experiments.plots import accuracy_speed_figure, plot_accuracy_vs_speed


def rows():
    """A sweep whose first points nearly coincide (r=0 and r=2 differ by little), as in the demo."""
    base = dict(merge_scope="all", throughput_batch=64, device="cpu", processor="AMD EPYC 7B13", threads=1)
    points = [(0, 100.0, 0.80, 1.0), (2, 101.0, 0.80, 0.995), (4, 103.0, 0.795, 0.99), (8, 130.0, 0.70, 0.9)]
    out = [dict(base, method="tome", r=r, samples_per_s=s, top1=t, agreement=a) for r, s, t, a in points]
    for method in ("random_merge", "random_drop"):
        out += [dict(row, method=method, top1=row["top1"] - 0.01) for row in out[1:4]]
    return out


def test_point_labels_do_not_overlap(tmp_path):
    fig = accuracy_speed_figure(rows(), "test")
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in ax.texts]
        assert {text for text, _ in boxes} >= {"r=0", "r=8"}
        for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
            assert not box_a.overlaps(box_b), f"labels {a!r} and {b!r} overlap"
        assert ax.get_xlabel() == "throughput (samples/s, batch 64, cpu: AMD EPYC 7B13, 1 thread)"
    assert plot_accuracy_vs_speed(rows(), tmp_path / "p.png").is_file()


def test_importing_the_plots_leaves_the_backend_alone():
    # In Jupyter the inline backend is already chosen; switching to Agg at import made plt.show() show nothing.
    import subprocess
    import sys

    code = (
        "import matplotlib; matplotlib.use('svg'); import tokenmerge.experiments.plots, tokenmerge.image.visualize; "
        "print(matplotlib.get_backend())"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "svg"
