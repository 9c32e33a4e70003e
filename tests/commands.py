"""Running a module of the package as a user does, without the debug switches that would show tracebacks."""

import os
import subprocess
import sys

DEBUG_SWITCHES = ("HYDRA_FULL_ERROR", "TOKENMERGE_DEBUG")


def run_module(module: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m module args...`` with output captured and no debug switch set (so user errors are one line)."""
    env = {k: v for k, v in os.environ.items() if k not in DEBUG_SWITCHES}
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=timeout, env=env
    )
