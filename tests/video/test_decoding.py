"""Frames decoded as MAE-ST's decoder decodes them: BT.601 at limited range whatever the file's colour tag, and the
long side rounded (not floored) when the short side is resized. The reference conversion is computed here from the
raw YUV planes with the BT.601 limited-range matrix."""

from pathlib import Path

import av
import numpy as np
import pytest

from tokenmerge.video.data import decode_video, resized_size, to_rgb

REPO = Path(__file__).resolve().parents[2]
MEDIA = REPO.parent / "shared" / "media"

# BT.601 (ITU-R BT.601 Kr = 0.299, Kb = 0.114) on limited range: Y in 16..235, Cb/Cr in 16..240
BT601 = np.array([[1.164383, 0.0, 1.596027], [1.164383, -0.391762, -0.812968], [1.164383, 2.017232, 0.0]])
# BT.709 (Kr = 0.2126, Kb = 0.0722), what a converter that follows a bt709 tag would use
BT709 = np.array([[1.164383, 0.0, 1.792741], [1.164383, -0.213249, -0.532909], [1.164383, 2.112402, 0.0]])


def reference_rgb(frame: av.VideoFrame, matrix: np.ndarray = BT601) -> np.ndarray:
    """[H, W, 3] RGB of a yuv420p frame from its planes: chroma repeated over its 2 x 2 pixels, limited range."""
    assert frame.format.name == "yuv420p", frame.format.name
    y, u, v = (np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width] for p in frame.planes)
    u, v = (c.repeat(2, 0).repeat(2, 1)[: frame.height, : frame.width] for c in (u, v))
    yuv = np.stack([y.astype(float) - 16, u.astype(float) - 128, v.astype(float) - 128], -1)
    return np.clip(np.rint(yuv @ matrix.T), 0, 255)


def write_tagged_clip(path: Path, colorspace: str = "ITU709", frames: int = 4, size: tuple[int, int] = (48, 64)):
    """A lossless (FFV1) yuv420p clip tagged ``colorspace``: a luma ramp, one saturated chroma per frame (constant
    over the frame, so the chroma upsampling filter cannot matter)."""
    height, width = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.colorspace = getattr(av.video.reformatter.Colorspace, colorspace)
        stream.codec_context.color_range = av.video.reformatter.ColorRange.MPEG
        for i in range(frames):
            y = np.tile(np.linspace(40, 220, width).astype(np.uint8), (height, 1))
            u = np.full((height // 2, width // 2), (60, 200, 90, 180)[i % 4], np.uint8)
            v = np.full((height // 2, width // 2), (200, 60, 70, 190)[i % 4], np.uint8)
            frame = av.VideoFrame.from_ndarray(
                np.concatenate([y, u.reshape(-1, width), v.reshape(-1, width)]), "yuv420p"
            )
            frame.colorspace = stream.codec_context.colorspace
            frame.color_range = av.video.reformatter.ColorRange.MPEG
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def test_the_long_side_is_rounded_half_up_as_the_decoder_does():
    assert resized_size(256, 340, 224) == (224, 298)  # 297.5: floor gave 297 (a 4:3 K400 copy at short side 256)
    assert resized_size(340, 256, 224) == (298, 224)
    assert resized_size(480, 854, 224) == (224, 399)  # 398.53
    assert resized_size(448, 593, 224) == (224, 297)  # 296.5: half up, not to even (Python's round gives 296)
    assert resized_size(480, 853, 224) == (224, 398) and resized_size(224, 224, 224) == (224, 224)


def test_a_bt709_tagged_clip_is_converted_with_bt601_at_limited_range(tmp_path):
    path = write_tagged_clip(tmp_path / "bt709.mkv")
    with av.open(str(path)) as container:
        raw = list(container.decode(video=0))
    assert raw[0].colorspace == av.video.reformatter.Colorspace.ITU709  # the tag survives: it is there to ignore
    decoded, _ = decode_video(path, short_side=48)  # the native size: colour conversion only
    assert decoded.shape == (4, 48, 64, 3)
    expected = np.stack([reference_rgb(frame) for frame in raw])
    difference = np.abs(decoded.astype(float) - expected)
    assert difference.max() <= 2, difference.max()  # measured: 2 (swscale's fixed-point arithmetic)
    # the tag's own matrix is far from what MAE-ST's decoder gives: the check can tell them apart
    assert np.abs(np.stack([reference_rgb(f, BT709) for f in raw]) - expected).max() > 20


@pytest.mark.parametrize("name", ["mae_st_demo.avi", "dog.mp4"])
def test_real_videos_match_the_bt601_reference(name):
    path = MEDIA / name
    if not path.is_file():
        pytest.skip(f"{path} is not here")
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == 3:
                break
            difference = np.abs(to_rgb(frame, frame.width, frame.height).astype(float) - reference_rgb(frame))
            # measured: max 3, mean 0.77 (mae_st_demo.avi) and 1.28 (dog.mp4): swscale interpolates chroma
            assert difference.max() <= 3 and difference.mean() < 1.5, (difference.max(), difference.mean())
