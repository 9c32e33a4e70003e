"""The ``tokenmerge`` command: one entry point for every modality's experiments.

    tokenmerge demo [--quick] [--fresh] [--out outputs/demo]     the main job: all modalities, one report
    tokenmerge eval image|video|audio [hydra overrides]          evaluate a model and data with a ToMe setting
    tokenmerge train image|video|audio [hydra overrides]         fine-tune with merging on (Hydra; torchrun: DDP)
    tokenmerge visualize image PHOTO [--model ...] [--r 8]       draw the merged groups on an image
    tokenmerge visualize video [VIDEO] [--r 16] [--scope ...]    ... across the frames of a clip
    tokenmerge visualize audio [AUDIO] [--r 6] [--start ...]     ... over a spectrogram
    tokenmerge bench image|video|audio|paper|merge-overhead [args]   throughput benchmarks (repository checkout)

``tokenmerge <command> --help`` explains each; ``tokenmerge eval image --help`` shows the Hydra config groups
(``model=``, ``data=``, ``tome.r=``, ``experiment=``), and ``-m`` sweeps (``tokenmerge eval image -m
tome.r=0,8,16``). Under torchrun (``torchrun --nproc_per_node=N -m tokenmerge.app.main eval ...`` or ``... train
...``) evaluation and training run on N processes. User errors end with one line ``error: ...`` and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import runpy
import sys
from pathlib import Path

from tokenmerge.experiments.cli import DataError, user_errors

from . import demo

MODALITIES = ("image", "video", "audio")
EVAL_EXAMPLES = """examples:
  tokenmerge eval image tome.r=8                                  embedded model and data, r=8
  tokenmerge eval image model=timm model.name=vit_base_patch16_224 data.root=/data/imagenet/val tome.r=16
  tokenmerge eval video experiment=paper_k400_vit_large model.checkpoint=mae_st.pth data.root=/data/k400/val.csv
  tokenmerge eval audio -m tome.r=0,4,8 tome.method=tome,random_drop     a Hydra sweep, one combined table
  tokenmerge eval image --help                                    the config groups and every option"""
TRAIN_EXAMPLES = """examples:
  tokenmerge train video tome.r=16 model.checkpoint=video/weights/clip_vit.safetensors train.steps=500
  tokenmerge train video model=vit_large_patch16 model.checkpoint=mae_st.pth data.train=/k400/train.csv tome.r=20
  tokenmerge train video experiment=paper_k400_vit_large_finetune model.pretrained=k400_400ep_rep4_mr9_16x4.pyth ...
  tokenmerge train audio experiment=paper_audioset_vit_base_finetune model.pretrained=pretrained.pth tome.r=32 ...
  tokenmerge train audio tome.r=8 model.checkpoint=audio/weights/speech_vit.safetensors train.steps=600
  tokenmerge train image model=deit_small_patch16_224 data.train=/data/flowers/train data.val=/data/flowers/val
  torchrun --nproc_per_node 2 -m tokenmerge.app.main train video tome.r=16     DDP, rank 0 writes
  tokenmerge train video --help                                   the config groups and every option"""
BENCHMARKS = {
    "image": "image_throughput.py",
    "video": "video_throughput.py",
    "audio": "audio_throughput.py",
    "merge-overhead": "merge_overhead.py",
    "paper": "paper_settings.py",
}


def _run_hydra(module: str, prog: str, overrides: list[str]) -> None:
    """Call a Hydra entry point as if it had been started as ``prog overrides...``."""
    argv = sys.argv
    sys.argv = [prog, *overrides]
    try:
        importlib.import_module(module).main()
    finally:
        sys.argv = argv


def _benchmark_script(name: str) -> Path:
    script = Path(__file__).resolve().parents[1] / "benchmarks" / BENCHMARKS[name]
    if not script.is_file():
        raise DataError(
            f"benchmark script {script} not found: the benchmarks live in the repository checkout (benchmarks/); "
            "install tokenmerge from a clone (pip install -e .) to run them."
        )
    return script


def _run_script(script: Path, args: list[str]) -> None:
    argv = sys.argv
    sys.argv = [str(script), *args]
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = argv


def _passthrough(
    commands, name: str, summary: str, description: str, choice: tuple, rest: tuple[str, str], epilog: str = ""
) -> None:
    """A command that picks one of ``choice = (dest, choices)`` and hands every later argument (``rest = (dest,
    help)``) to what it runs."""
    command = commands.add_parser(
        name,
        help=summary,
        description=description,
        epilog=epilog or None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument(choice[0], choices=choice[1])
    command.add_argument(rest[0], nargs=argparse.REMAINDER, help=rest[1])


def parser() -> argparse.ArgumentParser:
    """The command line, with a sub-parser per command."""
    top = argparse.ArgumentParser(
        prog="tokenmerge", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = top.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run_demo = commands.add_parser(
        "demo",
        help="the main job: every modality's embedded demo and one report (outputs/demo/report.md)",
        description=demo.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_arguments(run_demo)

    _passthrough(
        commands,
        "eval",
        "evaluate a model on data with a ToMe setting (Hydra: overrides, -m sweeps)",
        "Evaluate the unmerged model and one ToMe setting: accuracy (or mAP), agreement, throughput, FLOPs; "
        "results.json/csv in the run folder. Everything after the modality goes to Hydra.",
        ("modality", MODALITIES),
        ("overrides", "Hydra overrides (key=value), -m, --help"),
        epilog=EVAL_EXAMPLES,
    )
    _passthrough(
        commands,
        "train",
        "fine-tune a model with merging on (Hydra)",
        "Train with a merge schedule active; weights, training state and history in the output folder. Everything "
        "after the modality goes to the training job as Hydra overrides (tokenmerge train video --help shows the "
        "config). model.checkpoint starts from weights of the same model, model.pretrained (video, audio) from an "
        "MAE-ST or AudioMAE pre-training checkpoint (encoder loaded, new head). The embedded models train with "
        "python -m tokenmerge.<modality>.train_embedded.",
        ("modality", MODALITIES),
        ("args", "Hydra overrides (video, audio) or options (image)"),
        epilog=TRAIN_EXAMPLES,
    )
    _passthrough(
        commands,
        "visualize",
        "draw the merged groups of a model on an image, across video frames or over a spectrogram",
        "Draw the merged groups on an image, the frames of a clip or a spectrogram. Everything after the modality "
        "goes to the visualizer; tokenmerge visualize image|video|audio --help lists its options. Without a file, "
        "video and audio draw a held-out clip of their embedded task.",
        ("modality", MODALITIES),
        ("args", "[FILE] [--model ...] [--r ...] [--out ...]"),
    )
    _passthrough(
        commands,
        "bench",
        "throughput benchmarks: tables and JSON (needs the repository checkout)",
        "Run a benchmark script of benchmarks/; everything after its name goes to the script "
        "(tokenmerge bench image --help lists its options).",
        ("name", tuple(sorted(BENCHMARKS))),
        ("args", "the script's options"),
    )
    return top


@user_errors
def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.command == "demo":
        demo.run_from_arguments(args)
    elif args.command == "eval":
        _run_hydra(f"tokenmerge.{args.modality}.run_eval", f"tokenmerge eval {args.modality}", args.overrides)
    elif args.command == "train":
        _run_hydra(f"tokenmerge.{args.modality}.train", f"tokenmerge train {args.modality}", args.args)
    elif args.command == "visualize":
        importlib.import_module(f"tokenmerge.{args.modality}.visualize").main(args.args)
    elif args.command == "bench":
        _run_script(_benchmark_script(args.name), args.args)


if __name__ == "__main__":
    main()
