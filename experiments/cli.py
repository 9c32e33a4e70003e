"""How user errors reach the terminal: one line, ``error: <what was wrong and what to do>``, and exit status 2.

Every command-line entry point (Hydra ``run_eval`` of every modality, the demos, ``visualize``, the training
scripts) wraps its ``main`` in :func:`user_errors`. Code that finds a mistake in what the user asked for (a bad
setting, a missing or empty data folder, unknown model, missing weights, an unreadable input file) raises a
:class:`UserError`; anything else is a bug and keeps its traceback. ``HYDRA_FULL_ERROR=1`` or
``TOKENMERGE_DEBUG=1`` shows the traceback of a user error too.

The subclasses keep the built-in type callers of the Python API already catch: a :class:`SettingError` is a
``ValueError``, a :class:`DataError` a ``FileNotFoundError``.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable
from typing import TypeVar

__all__ = [
    "DEBUG_VARIABLES",
    "EXIT_USER_ERROR",
    "DataError",
    "HelpFormatter",
    "SettingError",
    "UserError",
    "one_line",
    "user_errors",
]

#: Environment variables that make a user error raise with its full traceback.
DEBUG_VARIABLES = ("TOKENMERGE_DEBUG", "HYDRA_FULL_ERROR")
#: Exit status of a command stopped by a user error (as argparse uses for bad arguments).
EXIT_USER_ERROR = 2

F = TypeVar("F", bound=Callable)


class UserError(Exception):
    """A mistake in what the user asked for; the message says what was wrong and what to do."""


class SettingError(UserError, ValueError):
    """A setting (config value or argument) that cannot work, e.g. ``tome.r=-5`` or an unknown model name."""


class DataError(UserError, FileNotFoundError):
    """A file or folder the user named is missing, empty, laid out wrongly or unreadable."""


def debug_requested() -> bool:
    """Whether the user asked for full tracebacks (``TOKENMERGE_DEBUG`` or ``HYDRA_FULL_ERROR`` set and not 0)."""
    return any(os.environ.get(name, "0") not in ("", "0") for name in DEBUG_VARIABLES)


def one_line(error: BaseException) -> str:
    """The message of an error as one line: ``error: ...`` (newlines folded)."""
    text = " ".join(str(error).split()) or type(error).__name__
    return f"error: {text}"


def user_errors(main: F) -> F:
    """Wrap a command's ``main``: a :class:`UserError` prints one line to stderr and exits with status 2.

    Works under ``@hydra.main`` too (put it below, so Hydra calls the wrapped function): Hydra never sees the
    error, so no traceback and no Hydra hint are printed. Other exceptions pass through unchanged.
    """

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as error:
            if debug_requested():
                raise
            exit_with(error)

    return wrapper  # type: ignore[return-value]


def exit_with(error: BaseException) -> None:
    """Print ``error: ...`` as one line on stderr and exit with status 2."""
    sys.stdout.flush()
    print(one_line(error), file=sys.stderr, flush=True)
    raise SystemExit(EXIT_USER_ERROR)


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` of every command: the module docstring as written, and every option's default."""
