"""Videos shorter than one clip, for the tests that check they are counted and reported."""

from pathlib import Path

import av
import numpy as np


def write_short_video(path: Path, frames: int, size: int = 32, fps: int = 8) -> Path:
    """An H.264 mp4 of ``frames`` grey frames (``size`` px square) at ``fps``."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"crf": "10", "preset": "veryfast"})
        stream.width = stream.height = size
        stream.pix_fmt = "yuv444p"
        for t in range(frames):
            pixels = np.full((size, size, 3), 20 * t, dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode())
    return path
