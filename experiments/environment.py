"""What produced a result: library versions, device, processor and threads, recorded in every results file."""

from __future__ import annotations

import importlib.metadata
import platform
import sys

import torch

from .throughput import processor_name

PACKAGES = ("tokenmerge", "torch", "torchvision", "torchaudio", "timm", "numpy")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment() -> dict:
    """Versions of Python and the packages in ``PACKAGES``, the platform, CPU model, threads, the GPU (if any) and
    the command line."""
    return {
        "python": platform.python_version(),
        **{package: _version(package) for package in PACKAGES},
        "platform": platform.platform(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "processor": processor_name(),
        "threads": torch.get_num_threads(),
        "argv": sys.argv,
    }
