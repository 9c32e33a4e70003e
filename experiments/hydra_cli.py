"""Hydra entry points of every modality: check all jobs of a sweep first, share the reference, combine the tables.

Imported only by the ``run_eval`` entry points and by Hydra itself (library code never imports Hydra). An
entry point's primary config registers the callback with the modality's check function::

    hydra:
      callbacks:
        sweep:
          _target_: tokenmerge.experiments.hydra_cli.SweepCallback
          check: tokenmerge.image.experiment.check_config

and its ``main`` is ``@hydra.main(...)`` over ``@user_errors`` (:mod:`tokenmerge.experiments.cli`). Then

* a multirun (``-m tome.r=0,8,-5``) composes every job's config and checks it before the first job starts, so a
  bad value in the last job stops the sweep at once, with one line naming the job;
* the jobs of a sweep share the unmerged model's predictions (:func:`job_paths` gives each job the same cache
  file per model, data and device), so the reference pass runs once per model and dataset, not once per job;
* when the sweep ends, one table of all jobs is printed and written to ``results.json`` / ``results.csv`` in the
  sweep folder;
* ``-m`` / ``--multirun`` may come anywhere on the command line, also after the overrides (:func:`flags_first`:
  Hydra's own parser takes flags only before them);
* a run stopped by a user error leaves no run folder behind (:func:`discard_run_folder`): it would hold only
  Hydra's copy of the config.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import hydra
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from hydra.utils import get_method
from omegaconf import DictConfig, OmegaConf, open_dict

from .cli import UserError, debug_requested, exit_with, user_errors
from .evaluation import format_table, write_results

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
REFERENCE_KEYS = ("model", "data", "device")

__all__ = [
    "SweepCallback",
    "combine_sweep",
    "discard_run_folder",
    "flags_first",
    "evaluation_main",
    "job_overrides",
    "job_paths",
    "task_config",
    "training_main",
]


def task_config(config: DictConfig) -> dict:
    """A composed config as the task function sees it: without the ``hydra`` node, interpolations resolved."""
    config = config.copy()
    with open_dict(config):
        config.pop("hydra", None)
    return OmegaConf.to_container(config, resolve=True)  # type: ignore[return-value]


def job_overrides(config: DictConfig) -> list[list[str]]:
    """The override list of every job a basic-sweeper multirun will launch, in launch order."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    params = config.hydra.sweeper.get("params") or {}
    arguments = [f"{key}={value}" for key, value in params.items()]
    arguments += list(OmegaConf.to_container(config.hydra.overrides.task, resolve=False))
    loader = GlobalHydra.instance().config_loader()
    overrides = OverridesParser.create(config_loader=loader).parse_overrides(arguments)
    return [job for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]


class SweepCallback(Callback):
    """Checks every job of a multirun before the first starts; prints and writes one table when all are done.

    Args:
        check: dotted path of the modality's check function ``check(cfg: dict) -> None`` (raises
            :class:`~tokenmerge.experiments.cli.UserError`).
    """

    def __init__(self, check: str) -> None:
        self.check_path = check

    @property
    def check(self) -> Callable[[dict], Any]:
        return get_method(self.check_path)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.hydra.sweeper.get("_target_") != BASIC_SWEEPER:
            return  # other sweepers choose their jobs as they go: each job is checked when it starts
        loader, check = GlobalHydra.instance().config_loader(), self.check
        for number, overrides in enumerate(job_overrides(config)):
            try:
                check(task_config(loader.load_sweep_config(config, list(overrides))))
            except UserError as error:
                if debug_requested():
                    raise
                exit_with(UserError(f"job #{number} ({' '.join(overrides)}): {error} Nothing was run."))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        combine_sweep(Path(config.hydra.sweep.dir))


def combine_sweep(sweep_dir: str | Path) -> list[dict] | None:
    """Gather the jobs' ``results.json`` of a sweep folder into one table (printed) and one results.json/csv.

    Each model and dataset's unmerged reference row appears once; every row's speedup is against the reference
    timed in its own job (interleaved with it). Returns the combined rows, or None if no job wrote results.
    """
    sweep_dir = Path(sweep_dir)
    jobs = sorted(
        (path for path in sweep_dir.glob("*/results.json")),
        key=lambda path: (not path.parent.name.isdigit(), int(path.parent.name) if path.parent.name.isdigit() else 0),
    )
    rows, seen = [], set()
    for path in jobs:
        payload = json.loads(path.read_text())
        model, data = str(payload.get("model", "")), str(payload.get("data", ""))
        job = path.parent.name
        results = payload["results"]
        if (model, data) not in seen:
            seen.add((model, data))
            rows.append({"model": model, "job": job, **results[0]})
        rows += [{"model": model, "job": job, **row} for row in results[1:]]
    if not rows:
        return None
    print(f"sweep of {len(jobs)} jobs ({sweep_dir}):")
    print(format_table(rows))
    paths = write_results(
        rows,
        sweep_dir,
        jobs=len(jobs),
        note="each row's speedup is against the unmerged model timed in the same job",
    )
    print("wrote " + " and ".join(map(str, paths)))
    return rows


def job_paths(cfg: dict, keys: tuple[str, ...] = REFERENCE_KEYS) -> tuple[Path, Path | None]:
    """(this job's output folder, the sweep's reference cache file for its model/data/device, or None outside a
    multirun)."""
    hydra = HydraConfig.get()
    out_dir = Path(hydra.runtime.output_dir)
    if hydra.mode != RunMode.MULTIRUN:
        return out_dir, None
    # Under torchrun the predictions are in shard order, which depends on the number of processes.
    world_size = os.environ.get("WORLD_SIZE", "1")
    key = json.dumps({**{k: cfg.get(k) for k in keys}, "world_size": world_size}, sort_keys=True, default=str)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return out_dir, Path(hydra.sweep.dir) / "reference" / f"unmerged_{digest}.pt"


#: Hydra flags that take no value and may be written after the overrides (moved before them by :func:`flags_first`).
MOVABLE_FLAGS = ("-m", "--multirun")


def flags_first(arguments: Sequence[str]) -> list[str]:
    """``arguments`` with the flags of :data:`MOVABLE_FLAGS` moved to the front, the rest in order.

    Hydra's argparse stops at the first override, so ``tome.r=8 -m tome.method=tome,random_drop`` fails with
    "unrecognized arguments"; written in either order it now means the same.
    """
    flags = [arg for arg in arguments if arg in MOVABLE_FLAGS]
    return flags + [arg for arg in arguments if arg not in MOVABLE_FLAGS]


def discard_run_folder(folder: str | Path, stop: str | Path | None = None) -> bool:
    """Remove a run folder that holds nothing but Hydra's files (``.hydra/`` and ``*.log``), and the parents it
    leaves empty inside ``stop`` (default: the working directory); never ``stop`` itself or a folder above it.

    Returns whether ``folder`` was removed; a folder with any other file (results of an earlier run) is kept.
    """
    folder, stop = Path(folder).resolve(), Path(stop or os.getcwd()).resolve()
    if not folder.is_dir() or folder == stop or folder in stop.parents:
        return False
    if any(entry.name != ".hydra" and not (entry.is_file() and entry.suffix == ".log") for entry in folder.iterdir()):
        return False
    shutil.rmtree(folder, ignore_errors=True)
    parent = folder.parent
    while parent != stop and stop in parent.parents and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent
    return True


def _discarding_run_folder(task: Callable[[DictConfig], None]) -> Callable[[DictConfig], None]:
    """``task``; a user error first removes the run folder Hydra made for it (:func:`discard_run_folder`)."""

    @functools.wraps(task)
    def wrapper(cfg: DictConfig) -> None:
        try:
            task(cfg)
        except UserError:
            discard_run_folder(HydraConfig.get().runtime.output_dir)
            raise

    return wrapper


def _flags_anywhere(main: Callable[[], None]) -> Callable[[], None]:
    @functools.wraps(main)
    def wrapper() -> None:
        sys.argv = [sys.argv[0], *flags_first(sys.argv[1:])]
        main()

    return wrapper


def evaluation_main(config_package: str, run_evaluation: Callable[..., object]) -> Callable[[], None]:
    """The ``main`` of a modality's ``run_eval``: Hydra over ``config_package``'s ``eval.yaml``, one-line user
    errors, and ``run_evaluation(config, out_dir, reference_cache=...)`` with this job's folder and the sweep's
    shared reference cache (:func:`job_paths`)."""

    @hydra.main(version_base=None, config_path=f"pkg://{config_package}", config_name="eval")
    @user_errors
    @_discarding_run_folder
    def main(cfg: DictConfig) -> None:
        config = OmegaConf.to_container(cfg, resolve=True)
        out_dir, reference_cache = job_paths(config)
        run_evaluation(config, out_dir, reference_cache=reference_cache)

    return _flags_anywhere(main)


def training_main(config_package: str, run_training: Callable[..., object]) -> Callable[[], None]:
    """The ``main`` of a modality's ``train``: Hydra over ``config_package``'s ``train.yaml``, one-line user
    errors, and ``run_training(config, out_dir)`` into ``out_dir`` if the config sets it, else Hydra's run folder."""

    @hydra.main(version_base=None, config_path=f"pkg://{config_package}", config_name="train")
    @user_errors
    @_discarding_run_folder
    def main(cfg: DictConfig) -> None:
        config = OmegaConf.to_container(cfg, resolve=True)
        run_training(config, config["out_dir"] or HydraConfig.get().runtime.output_dir)

    return _flags_anywhere(main)
