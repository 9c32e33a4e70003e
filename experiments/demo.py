"""What the image, video and audio demos share: the seeded settings, the output files in one order, and the
command line (``--out``, ``--quick``, one-line errors for a file given as ``--out`` and for missing weights)."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from pathlib import Path

from PIL import Image

from .cli import DataError, HelpFormatter
from .evaluation import Setting, format_table, write_results
from .plots import plot_accuracy_vs_speed

__all__ = ["check_demo_arguments", "demo_parser", "seeded_settings", "write_demo_outputs"]


def seeded_settings(points: Iterable[tuple], seeds: Sequence[int]) -> list[Setting]:
    """``Setting(*point, seed=s)`` for every seed of ``seeds`` for random baselines; ToMe (deterministic) once.

    Args:
        points: ``(method, r)`` or ``(method, r, scope)`` tuples.
        seeds: the random baselines' seeds (their rows are averaged by
            :func:`tokenmerge.experiments.evaluation.average_over_seeds`).
    """
    return [Setting(*point, seed=seed) for point in points for seed in ((0,) if point[0] == "tome" else seeds)]


def write_demo_outputs(
    rows: list[dict],
    out_dir: str | Path,
    plots: dict[str, tuple[str, list[dict]]],
    pictures: Image.Image,
    **metadata,
) -> list[Path]:
    """Print the table; write, in this order, results.json, results.csv, the accuracy-vs-throughput plots and
    merges.png into ``out_dir``; print each path; return them.

    Args:
        rows: every row of the demo (seed-averaged).
        out_dir: the demo's folder.
        plots: plot file stem -> (title, rows) of one model, e.g. ``{"accuracy_vs_throughput": (title, rows)}``.
        pictures: the merge pictures, already laid out (``merge_gallery``).
        **metadata: stored in results.json (model, classes, training record, ...).
    """
    out_dir = Path(out_dir)
    print(format_table(rows))
    paths = list(write_results(rows, out_dir, **metadata))
    paths += [plot_accuracy_vs_speed(part, out_dir / f"{stem}.png", title) for stem, (title, part) in plots.items()]
    gallery = out_dir / "merges.png"
    pictures.save(gallery)
    paths.append(gallery)
    for path in paths:
        print(f"wrote {path}")
    return paths


def demo_parser(prog: str, description: str, out: str, what: str) -> argparse.ArgumentParser:
    """A demo's command line: ``--out`` (default ``out``) and ``--quick`` (fewer ``what``: "samples", "clips")."""
    parser = argparse.ArgumentParser(prog=prog, description=description, formatter_class=HelpFormatter)
    parser.add_argument("--out", default=out, help="output folder (make demo: DEMO_OUT/<modality>)")
    parser.add_argument("--quick", action="store_true", help=f"fewer {what}, r values, seeds and timing rounds")
    return parser


def check_demo_arguments(args: argparse.Namespace, weights: Sequence[str | Path], train_command: str) -> None:
    """Before anything runs: ``--out`` is not a file and every weights file is there (one-line errors).

    Raises:
        DataError: naming the file and what to do (``train_command`` makes missing weights).
    """
    if Path(args.out).is_file():
        raise DataError(f"--out {args.out} is a file: give a folder for the demo's results.")
    missing = [path for path in weights if not Path(path).is_file()]
    if missing:
        raise DataError(f"the embedded weights {missing[0]} are missing: train them ({train_command}).")
