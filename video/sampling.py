"""Which view of a video file a model takes: its frames and crop size, and the sampling of the embedded model
(consecutive frames, mean = std = 0.5) or of MAE-ST's (16 frames x 4 at 30 fps, mean 0.45, std 0.225)."""

from __future__ import annotations

from dataclasses import replace

from .data import ClipSampling
from .embedded import ARCH
from .moving_objects import SAMPLING

#: Input of the named MAE-ST configurations, (frames, frame side), unless num_frames / img_size say otherwise.
MAE_ST_INPUT = (16, 224)


def input_size(name: str = "embedded", num_frames: int | None = None, img_size: int | None = None) -> tuple[int, int]:
    """(frames, frame side) a model takes: the embedded 8 x 32, MAE-ST's 16 x 224, or the sizes given."""
    frames, side = (ARCH["num_frames"], ARCH["img_size"]) if name == "embedded" else MAE_ST_INPUT
    return num_frames or frames, img_size or side


def clip_sampling(
    name: str = "embedded", num_frames: int | None = None, img_size: int | None = None, **settings
) -> ClipSampling:
    """One view (the centre clip and crop) of a video file for a model: its frames and crop size, and ``settings``.

    Settings left out or None take the moving-objects values for the embedded model (consecutive frames, mean =
    std = 0.5) and MAE-ST's for the others (16 x 4 at 30 fps, mean 0.45, std 0.225); ``short_side`` defaults
    to the crop size.
    """
    frames, side = input_size(name, num_frames, img_size)
    base = SAMPLING if name == "embedded" else ClipSampling()
    given = {key: value for key, value in settings.items() if value is not None}
    given |= {key: tuple(given[key]) for key in ("mean", "std") if key in given}
    given.setdefault("short_side", side)
    return replace(base, num_frames=frames, crop_size=side, num_temporal_views=1, num_spatial_crops=1, **given)
