"""The main job (``make demo``, ``tokenmerge demo``): every modality's embedded demo, then one report.

    tokenmerge demo [--out outputs/demo] [--quick] [--fresh] [--only image,audio]

For image, video and audio in turn, r is swept on the embedded model and data with ToMe and random baselines
(the video merge scopes; the audio model trained with and without merging); each modality writes its table
(results.json/csv), accuracy-vs-throughput plot and merge pictures into ``<out>/<modality>/``, and
``<out>/report.md`` gathers them. Re-running reuses a modality whose results were made by the same weights
and settings; an interrupted sweep resumes with the settings it finished (their predictions are kept in
``<out>/<modality>/points/``); ``--fresh`` starts over.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import inspect
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from tokenmerge.experiments.cli import SettingError, user_errors
from tokenmerge.experiments.plots import use_file_backend

from .report import write_report


@dataclass(frozen=True)
class Modality:
    """One modality's demo: its module (with ``run_demo``, ``QUICK`` and ``WEIGHTS``) and what the report says."""

    name: str
    module: str
    about: str

    def demo(self):
        return importlib.import_module(self.module)


MODALITIES = {
    "image": Modality(
        "image",
        "tokenmerge.image.demo",
        "A timm ViT (6 blocks, 64 patches + class token) trained here to name the photograph a small pasted "
        "object comes from (21 bundled photographs); evaluated on images from held-out tiles of the photos.",
    ),
    "video": Modality(
        "video",
        "tokenmerge.video.demo",
        "An MAE-ST-style spatiotemporal ViT trained here on clips of objects moving over photographs; merging "
        "across space and time (spacetime) or within each frame (frame), against random dropping.",
    ),
    "audio": Modality(
        "audio",
        "tokenmerge.audio.demo",
        "An AudioMAE-style SpectrogramViT on spoken command words (eSpeak NG voices, noise) of voices never "
        "heard in training; the model trained without merging and the same model fine-tuned with merging.",
    ),
}
DONE_FILE, FINGERPRINT_FILE = "done.json", "fingerprint.json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def fingerprint(modality: Modality, quick: bool) -> dict:
    """What a modality's results depend on: the weights (hashes), the demo's settings and ``quick``."""
    demo = modality.demo()
    settings = {
        name: repr(parameter.default)
        for name, parameter in inspect.signature(demo.run_demo).parameters.items()
        if parameter.default is not inspect.Parameter.empty and name not in ("out_dir", "prediction_dir")
    }
    settings.update({name: repr(value) for name, value in demo.QUICK.items()} if quick else {})
    weights = demo.WEIGHTS_FILES
    return {"quick": quick, "settings": settings, "weights": {Path(w).name: _sha256(w) for w in weights}}


def run_modality(modality: Modality, out_dir: Path, quick: bool, fresh: bool) -> dict:
    """Run (or reuse, or resume) one modality's demo in ``out_dir``; returns its done record (with seconds)."""
    expected = fingerprint(modality, quick)
    done, points = out_dir / DONE_FILE, out_dir / "points"
    if fresh and out_dir.exists():
        shutil.rmtree(out_dir)
    if done.is_file():
        record = json.loads(done.read_text())
        if record.get("fingerprint") == expected:
            print(f"{modality.name}: reusing the results in {out_dir} (--fresh runs it again)")
            return {**record, "reused": True}
    saved = points / FINGERPRINT_FILE
    if saved.is_file() and json.loads(saved.read_text()) != expected:
        shutil.rmtree(points)  # made by other weights or settings: not a run to resume
    points.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(expected, indent=1) + "\n")
    print(f"\n== {modality.name} ==")
    start = time.perf_counter()
    demo = modality.demo()
    demo.run_demo(out_dir, prediction_dir=points, **(demo.QUICK if quick else {}))
    record = {"fingerprint": expected, "seconds": round(time.perf_counter() - start, 1)}
    done.write_text(json.dumps(record, indent=1) + "\n")
    return {**record, "reused": False}


def run_all(
    out_dir: str | Path = "outputs/demo", quick: bool = False, fresh: bool = False, only: tuple[str, ...] = ()
) -> Path:
    """Run every modality (or ``only`` these) and write ``<out_dir>/report.md``; returns the report's path."""
    unknown = sorted(set(only) - set(MODALITIES))
    if unknown:
        raise SettingError(f"--only: unknown modality {', '.join(unknown)}; choose from {', '.join(MODALITIES)}.")
    out_dir = Path(out_dir)
    start = time.perf_counter()
    records = {}
    for name, modality in MODALITIES.items():
        if not only or name in only:
            records[name] = run_modality(modality, out_dir / name, quick, fresh)
    report = write_report(out_dir, {name: (MODALITIES[name], record) for name, record in records.items()})
    total = time.perf_counter() - start
    print(f"\ndemo finished in {total / 60:.1f} min:")
    for name, record in records.items():
        how = "reused" if record["reused"] else f"{record['seconds'] / 60:.1f} min"
        print(f"  {name:<6} {how:>9}  {out_dir / name}")
    print(f"report: {report}")
    return report


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The module docstring as written, and every option's default."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="outputs/demo", help="output folder (make demo DEMO_OUT=... sets it)")
    parser.add_argument("--quick", action="store_true", help="fewer samples, r values and timing rounds (minutes)")
    parser.add_argument("--fresh", action="store_true", help="discard earlier results and run everything again")
    parser.add_argument("--only", default="", help="comma-separated modalities to run (default: all)")


def run_from_arguments(args: argparse.Namespace) -> Path:
    only = tuple(name.strip() for name in args.only.split(",") if name.strip())
    return run_all(args.out, quick=args.quick, fresh=args.fresh, only=only)


@user_errors
def main(argv: list[str] | None = None) -> None:
    use_file_backend()
    parser = argparse.ArgumentParser(
        prog="python -m tokenmerge.app.demo", description=__doc__, formatter_class=_HelpFormatter
    )
    add_arguments(parser)
    run_from_arguments(parser.parse_args(argv))


if __name__ == "__main__":
    main()
