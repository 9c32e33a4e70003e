"""The accuracy-vs-throughput plot: point labels never overlap or clip, noisy points are not joined, and the title
names the device, the CPU model and the threads."""

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
        assert ax.get_xlabel() == "throughput (samples/s)"
    assert fig._suptitle.get_text() == "test\nthroughput measured at batch 64, cpu: AMD EPYC 7B13, 1 thread"
    assert plot_accuracy_vs_speed(rows(), tmp_path / "p.png").is_file()


def test_noisy_speeds_are_not_joined_and_no_label_is_clipped():
    fig = accuracy_speed_figure(rows(), "a title long enough to need room " * 2)
    assert all(line.get_linestyle() == "None" for ax in fig.axes for line in ax.get_lines())
    assert len({line.get_marker() for line in fig.axes[0].get_lines()}) == 3  # one marker per method
    renderer = fig.canvas.get_renderer()
    inside = fig.bbox.expanded(1.001, 1.001)
    fig.canvas.draw()
    ticks = [
        t
        for ax in fig.axes
        for t in ax.get_xticklabels()
        if ax.get_xlim()[0] <= t.get_position()[0] <= ax.get_xlim()[1]
    ]
    texts = [fig._suptitle, *ticks] + [t for ax in fig.axes for t in (ax.xaxis.label, ax.yaxis.label)]
    for text in texts:
        box = text.get_window_extent(renderer)
        assert inside.contains(box.x0, box.y0) and inside.contains(box.x1, box.y1), f"{text.get_text()!r} is clipped"
    left, right = (ax.xaxis.label.get_window_extent(renderer) for ax in fig.axes)
    assert not left.overlaps(right)


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
