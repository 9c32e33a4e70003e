"""compare_variants (eager and compiled) and the speedup-vs-r plot the benchmark scripts draw from its rows."""

import torch
from torch import nn

from tokenmerge.experiments.benchmark import add_settings, compare_variants
from tokenmerge.experiments.plots import plot_speedup_vs_r, speedup_figure


class Slice(nn.Module):
    """A linear layer on the first ``keep`` tokens: FLOPs scale with the tokens kept, like a merged model."""

    def __init__(self, keep: int):
        super().__init__()
        self.keep, self.linear = keep, nn.Linear(32, 32)

    def forward(self, x):
        return self.linear(x[:, : self.keep])


def _rows(compile=False):
    torch.manual_seed(0)
    variants = {"unpatched": Slice(64), "r=16 tome": Slice(32), "r=16 random_drop": Slice(32), "r=8 tome": Slice(48)}
    return add_settings(compare_variants(variants, torch.randn(4, 64, 32), rounds=2, compile=compile, model="toy"))


def test_rows_carry_settings_ideal_speedup_and_its_share():
    rows = {row["variant"]: row for row in _rows()}
    assert (rows["unpatched"]["r"], rows["unpatched"]["series"]) == (0, "baseline")
    assert (rows["r=16 random_drop"]["r"], rows["r=16 random_drop"]["series"]) == (16, "random_drop")
    assert rows["r=16 tome"]["ideal_speedup"] == 2.0 and rows["r=8 tome"]["ideal_speedup"] == 64 / 48
    for row in rows.values():
        assert abs(row["of_ideal"] - row["speedup"] / row["ideal_speedup"]) < 1e-9
        assert row["peak_memory_mb"] is None and row["compiled"] is False and row["model"] == "toy"


def test_compiled_variants_are_timed_and_marked():
    rows = _rows(compile=True)
    assert all(row["compiled"] and row["samples_per_s"] > 0 for row in rows)


def test_speedup_plot_has_a_measured_and_an_ideal_line_per_series(tmp_path):
    rows = _rows()
    ax = speedup_figure(rows, "toy").axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["tome (measured)", "tome (FLOPs-ideal)", "random_drop (measured)", "random_drop (FLOPs-ideal)"]
    tome_ideal = ax.get_lines()[1]
    assert list(tome_ideal.get_xdata()) == [0, 8, 16] and list(tome_ideal.get_ydata()) == [1, 64 / 48, 2.0]
    assert plot_speedup_vs_r(rows, tmp_path / "speedup.png", "toy").is_file()
