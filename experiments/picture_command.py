"""What the three ``visualize`` commands share: the ``--r`` option, loading the weights, writing the picture.

Each turns a user's mistake into a one-line :class:`~tokenmerge.experiments.cli.UserError` naming the option to fix.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

from tokenmerge.core.schedule import ScheduleSpec, check_schedule, parse_schedule

from .cli import DataError, SettingError


def parse_r_option(text: str) -> ScheduleSpec:
    """``--r`` as the API takes it (``8``, ``8,-1``, ``0.25``, ``[8,8,4,4]``), checked before any model is built."""
    try:
        return parse_schedule(text)
    except (TypeError, ValueError) as error:
        raise SettingError(f"--r {text}: {error}") from None


def check_r_option(spec: ScheduleSpec, text: str, num_layers: int) -> None:
    """Check ``--r`` against the depth of the model it will patch."""
    try:
        check_schedule(spec, num_layers)
    except (TypeError, ValueError) as error:
        raise SettingError(f"--r {text}: {error}") from None


@contextmanager
def checkpoint_errors(checkpoint: str | None) -> Iterator[None]:
    """Around loading a model: a missing file becomes a :class:`DataError`, weights that do not fit a
    :class:`SettingError` on ``--checkpoint``."""
    try:
        yield
    except FileNotFoundError as error:
        raise DataError(str(error)) from None
    except ValueError as error:
        raise SettingError(f"--checkpoint {checkpoint}: {error}") from None


def save_picture(picture: Image.Image, out: str | Path) -> Path:
    """Write ``picture`` to ``out`` (folders created) and say so; an unwritable path is a one-line error."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        picture.save(out)
    except (OSError, ValueError) as error:
        raise SettingError(f"--out {out}: cannot write the picture ({error}); use a .png or .jpg path.") from None
    print(f"wrote {out}")
    return out
