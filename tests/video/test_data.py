"""Video evaluation data: MAE-ST's temporal and spatial views, CSV and folder indices, bad files skipped, videos
shorter than one clip noted."""

import logging
import math
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from tokenmerge.experiments.data import SampleNote
from tokenmerge.video import data
from tokenmerge.video.data import (
    SHORT_VIDEO,
    ClipSampling,
    build_video_loader,
    clip_past_end,
    crop_offsets,
    decode_video,
    index_from_csv,
    index_from_folders,
    load_index,
    resized_size,
    temporal_indices,
    video_views,
)

REPO = Path(__file__).resolve().parents[2]
DOG = next((p for p in (REPO.parent / "shared/media/dog.mp4", Path("/work/shared/media/dog.mp4")) if p.is_file()), None)
TINY = ClipSampling(
    num_frames=4,
    sampling_rate=2,
    target_fps=None,
    num_temporal_views=2,
    num_spatial_crops=3,
    short_side=16,
    crop_size=16,
    mean=(0.0,) * 3,
    std=(1.0,) * 3,
)


def write_mp4(path: Path, frames: np.ndarray, fps: int = 10) -> Path:
    """frames [N, H, W, 3] uint8 -> a near-lossless H.264 file."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"crf": "0"})
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv444p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def grey_ramp(n: int, height: int = 16, width: int = 24) -> np.ndarray:
    """[n, H, W, 3] frames whose grey level is 20 x the frame index."""
    return np.broadcast_to((20 * np.arange(n, dtype=np.uint8))[:, None, None, None], (n, height, width, 3)).copy()


def test_temporal_indices_follow_mae_st():
    # 100 frames, clips of 4 frames spanning 8: delta = 92, starts 0, floor(92 / 2) = 46 and 92;
    # linspace(0, 7, 4) = 0, 2.33, 4.67, 7 truncates to 0, 2, 4, 7.
    assert temporal_indices(100, 4, 8, 3).tolist() == [[0, 2, 4, 7], [46, 48, 50, 53], [92, 94, 96, 99]]
    assert temporal_indices(100, 4, 8, 1).tolist() == [[46, 48, 50, 53]]  # one view: the centre clip
    # A video shorter than the span: every view starts at 0 and the last frame repeats.
    assert temporal_indices(5, 4, 8, 2).tolist() == [[0, 2, 4, 4], [0, 2, 4, 4]]


def test_clip_span_converts_frame_rates():
    sampling = ClipSampling(num_frames=4, sampling_rate=2, target_fps=30)
    assert sampling.clip_span(15) == 4 and sampling.clip_span(30) == 8 and sampling.clip_span(None) == 8
    assert ClipSampling(num_frames=4, sampling_rate=2, target_fps=None).clip_span(15) == 8
    assert ClipSampling().num_views == 30


def test_resize_and_crops_follow_mae_st():
    assert resized_size(480, 853, 224) == (224, 398) and resized_size(853, 480, 224) == (398, 224)
    assert crop_offsets(24, 40, 24, 3) == [(0, 0), (0, 8), (0, 16)]  # wide: left, centre, right
    assert crop_offsets(40, 24, 24, 3) == [(0, 0), (8, 0), (16, 0)]  # tall: top, centre, bottom
    assert crop_offsets(24, 41, 24, 1) == [(0, 9)]  # centre, rounded up as uniform_crop does


def test_bad_sampling_settings_are_refused():
    with pytest.raises(ValueError, match="num_spatial_crops"):
        ClipSampling(num_spatial_crops=2)
    with pytest.raises(ValueError, match="short_side"):
        ClipSampling(short_side=200, crop_size=224)
    with pytest.raises(ValueError, match="num_frames"):
        ClipSampling(num_frames=0)


def test_views_take_the_right_frames_and_crops(monkeypatch):
    # Red encodes the frame index, green the column, blue the row: every view says where it came from.
    t, y, x = np.meshgrid(np.arange(12), np.arange(16), np.arange(28), indexing="ij")
    frames = np.stack([10 * t, 5 * x, 5 * y], axis=-1).astype(np.uint8)
    monkeypatch.setattr(data, "decode_video", lambda path, short_side: (frames, 30.0))
    views = video_views("clip.mp4", TINY) * 255  # [2 x 3, 3, 4, 16, 16]
    assert views.shape == (6, 3, 4, 16, 16)
    for v, (clip, column) in enumerate((c, col) for c in ([0, 2, 4, 7], [4, 6, 8, 11]) for col in (0, 6, 12)):
        assert torch.allclose(views[v, 0, :, 0, 0], 10 * torch.tensor(clip, dtype=torch.float))
        assert torch.allclose(views[v, 1, 0, 0], 5 * torch.arange(column, column + 16, dtype=torch.float))
        assert torch.allclose(views[v, 2, 0, :, 0], 5 * torch.arange(16, dtype=torch.float))
    normalized = video_views("clip.mp4", ClipSampling(**{**TINY.__dict__, "mean": (0.5,) * 3, "std": (0.25,) * 3}))
    assert torch.allclose(normalized, (views / 255 - 0.5) / 0.25, atol=1e-5)


def test_decoding_gives_back_the_frames_and_resizes_the_short_side(tmp_path):
    path = write_mp4(tmp_path / "ramp.mp4", grey_ramp(6))
    frames, fps = decode_video(path, 16)
    assert frames.shape == (6, 16, 24, 3) and fps == 10
    assert np.abs(frames.astype(int) - grey_ramp(6)).max() <= 2
    small, _ = decode_video(path, 8)
    assert small.shape == (6, 8, 12, 3)


def test_csv_index_paths_labels_and_classes(tmp_path):
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    absolute = write_mp4(tmp_path / "b.mp4", grey_ramp(2))
    write_mp4(tmp_path / "a.mp4", grey_ramp(2))
    (tmp_path / "val.csv").write_text(f"path,label\na.mp4,dog\n{absolute},0\n\nsub/c.mp4 1\n")
    index = index_from_csv(tmp_path / "val.csv")
    assert index.classes == ["cat", "dog"]
    assert index.samples == [(str(tmp_path / "a.mp4"), 1), (str(absolute), 0), (str(tmp_path / "sub/c.mp4"), 1)]
    assert index_from_csv(tmp_path / "val.csv", classes=["x", "dog", "cat"]).samples[0][1] == 1
    (tmp_path / "val.json").write_text('{"data": [{"video": "a.mp4", "label": "dog"}, {"path": "b.mp4", "label": 0}]}')
    assert load_index(tmp_path / "val.json").samples == [(str(tmp_path / "a.mp4"), 1), (str(tmp_path / "b.mp4"), 0)]


@pytest.mark.parametrize(
    "rows, classes, error, message",
    [
        ("a.mp4,bird\n", None, ValueError, "not one of the 2 classes"),
        ("a.mp4,2\n", None, ValueError, "out of range"),
        ("a.mp4,dog\n", [], ValueError, "not one of the 0 classes"),
        ("", None, ValueError, "No videos"),
        ("missing.mp4,0\n", None, FileNotFoundError, "None of the 1 videos"),
        ("a.mp4,0,extra\n", None, ValueError, "expected 'path,label'"),
    ],
)
def test_csv_index_errors_say_what_to_fix(tmp_path, rows, classes, error, message):
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    (tmp_path / "a.mp4").write_bytes(b"")
    (tmp_path / "val.csv").write_text(rows)
    with pytest.raises(error, match=message):
        index_from_csv(tmp_path / "val.csv", classes=classes)


def test_class_names_need_a_class_list_and_missing_files_are_explained(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"")
    (tmp_path / "val.csv").write_text("a.mp4,dog\n")
    with pytest.raises(ValueError, match="no class list"):
        index_from_csv(tmp_path / "val.csv")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        index_from_csv(tmp_path / "nowhere.csv")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        index_from_folders(tmp_path / "nowhere")


def test_folder_index_uses_sorted_folders_or_classes_txt(tmp_path):
    for name in ("b/2.mp4", "a/1.avi", "a/notes.txt", "empty/.keep"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    index = index_from_folders(tmp_path)
    assert index.classes == ["a", "b", "empty"]
    assert index.samples == [(str(tmp_path / "a/1.avi"), 0), (str(tmp_path / "b/2.mp4"), 1)]
    assert index_from_folders(tmp_path, classes=["b", "a"]).samples == [
        (str(tmp_path / "a/1.avi"), 1),
        (str(tmp_path / "b/2.mp4"), 0),
    ]
    (tmp_path / "classes.txt").write_text("b\n")
    with pytest.raises(ValueError, match="'a' is not in the class list"):
        index_from_folders(tmp_path)
    with pytest.raises(ValueError, match="No videos"):
        index_from_folders(tmp_path / "empty")


def test_corrupt_and_truncated_videos_are_skipped_and_listed(tmp_path, caplog):
    good = write_mp4(tmp_path / "good.mp4", grey_ramp(8))
    (tmp_path / "garbage.mp4").write_bytes(np.random.default_rng(0).bytes(3000))
    (tmp_path / "truncated.mp4").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (tmp_path / "val.csv").write_text("good.mp4,0\ngarbage.mp4,1\ntruncated.mp4,0\ngone.mp4,1\n")
    with caplog.at_level(logging.WARNING):
        batches = list(build_video_loader(tmp_path / "val.csv", sampling=TINY, batch_size=4, workers=0))
    assert len(batches) == 1
    batch = batches[0]
    assert batch.inputs.shape == (1, 6, 3, 4, 16, 16) and batch.targets.tolist() == [0]
    skipped = sorted(Path(item.path).name for item in batch.skipped)
    assert skipped == ["garbage.mp4", "gone.mp4", "truncated.mp4"]
    assert all(item.error for item in batch.skipped) and "garbage.mp4" in caplog.text


@pytest.mark.parametrize(
    "frames, num_frames, span",
    [(7, 4, 8), (8, 4, 8), (5, 4, 8), (100, 4, 8), (5, 1, 8), (52, 16, 64 * 25 / 30), (53, 16, 64 * 25 / 30)],
)
def test_a_clip_past_the_end_is_one_that_clamping_changes(frames, num_frames, span):
    start = math.floor(max(frames - span, 0) / 2)
    unclamped = torch.linspace(start, start + span - 1, num_frames).long()
    changed = not torch.equal(temporal_indices(frames, num_frames, span, 1)[0], unclamped)
    assert clip_past_end(frames, num_frames, span) == changed


def test_a_video_shorter_than_one_clip_is_evaluated_as_mae_st_does_and_noted(tmp_path):
    write_mp4(tmp_path / "short.mp4", grey_ramp(7))  # TINY's clip spans 8 frames: 7 fall short
    write_mp4(tmp_path / "full.mp4", grey_ramp(8))  # exactly one clip: not noted
    (tmp_path / "val.csv").write_text("short.mp4,0\nfull.mp4,1\n")
    batch = next(iter(build_video_loader(tmp_path / "val.csv", sampling=TINY, batch_size=4, workers=0)))
    assert batch.targets.tolist() == [0, 1] and batch.skipped == []
    assert batch.notes == [SampleNote(str(tmp_path / "short.mp4"), SHORT_VIDEO, "7 frames; a clip spans 8")]
    grey = batch.inputs[0, 0, 0, :, 0, 0] * 255 / 20  # frame indices of the short video's first view
    assert grey.round().tolist() == [0, 2, 4, 6]  # linspace(0, 7, 4) = 0, 2, 4, 7 with 7 clamped to the last frame


def test_max_samples_takes_an_evenly_spaced_subset(tmp_path):
    write_mp4(tmp_path / "v.mp4", grey_ramp(4))
    (tmp_path / "val.csv").write_text("".join(f"v.mp4,{i}\n" for i in range(10)))
    loader = build_video_loader(tmp_path / "val.csv", sampling=TINY, batch_size=8, workers=0, max_samples=4)
    assert [t for batch in loader for t in batch.targets.tolist()] == [0, 2, 5, 7]


@pytest.mark.skipif(DOG is None, reason="no shared media (../shared/media/dog.mp4)")
def test_real_footage_decodes_into_views():
    frames, fps = decode_video(DOG, 64)
    assert frames.shape[0] > 8 and min(frames.shape[1:3]) == 64 and fps > 0
    sampling = ClipSampling(num_frames=8, num_temporal_views=2, short_side=64, crop_size=64)
    views = video_views(DOG, sampling)
    assert views.shape == (6, 3, 8, 64, 64) and torch.isfinite(views).all()
    assert views.std() > 0.1  # real content, not a blank frame
