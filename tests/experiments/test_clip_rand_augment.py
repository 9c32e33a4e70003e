"""MAE-ST's clip RandAugment and random erasing (experiments/clip_augment.py): one draw for every frame of a clip,
timm's notation, seeded by torch's RNG, and off by default in the video training clips."""

import numpy as np
import pytest
import torch

import tokenmerge.video.train as video_train
from tokenmerge.experiments.clip_augment import OPS, ClipRandAugment, ClipRandomErasing, ClipRandomResizedCrop
from tokenmerge.experiments.data_index import DataIndex
from tokenmerge.video.data import ClipSampling

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/experiments/conftest.py


def frames(t: int = 4, seed: int = 0) -> torch.Tensor:
    """A clip of ``t`` different frames [T, 3, 24, 32] uint8: smooth gradients plus noise, so every op changes it."""
    generator = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(0, 200, 32).expand(24, 32)
    clip = torch.stack([ramp + 10 * k + 30 * torch.rand(3, 24, 32, generator=generator) for k in range(t)])
    return clip.clamp(0, 255).to(torch.uint8)


@pytest.mark.parametrize("name", OPS)
def test_every_op_keeps_shape_and_dtype_and_changes_the_clip(name):
    clip = frames()
    changed = False
    for seed in range(4):
        torch.manual_seed(seed)
        out = OPS[name](clip, 7.0)
        assert out.shape == clip.shape and out.dtype == torch.uint8
        changed |= not torch.equal(out, clip)
    assert changed


def test_one_draw_is_applied_to_every_frame():
    augment = ClipRandAugment.from_spec("rand-m7-mstd0.5-inc1")
    clip = frames(t=5)
    changed = 0
    for seed in range(40):
        torch.manual_seed(seed)
        whole = augment(clip)
        for t in range(5):  # the same RNG state on one frame alone gives that frame of the clip
            torch.manual_seed(seed)
            torch.testing.assert_close(augment(clip[t : t + 1])[0], whole[t], rtol=0, atol=0)
        changed += not torch.equal(whole, clip)
    assert 20 <= changed < 40  # each of the 2 ops runs with probability 0.5: 3/4 of the clips change

    still = clip[:1].expand(6, -1, -1, -1).clone()  # identical frames stay identical
    for seed in range(20):
        torch.manual_seed(seed)
        out = augment(still)
        assert all(torch.equal(out[0], out[t]) for t in range(6))


def test_draws_come_from_torchs_seeded_rng():
    augment = ClipRandAugment(magnitude=9, num_ops=3)
    clip = frames()
    outs = []
    for seed in (1, 1, 2):
        torch.manual_seed(seed)
        outs.append(augment(clip))
    assert torch.equal(outs[0], outs[1]) and not torch.equal(outs[0], outs[2])


def test_timm_notation_is_parsed_and_mistakes_are_named():
    assert ClipRandAugment.from_spec("rand-m7-mstd0.5-inc1") == ClipRandAugment(7.0, 2, 0.5)
    assert ClipRandAugment.from_spec("rand-n3-m9-inc1") == ClipRandAugment(9.0, 3, 0.0)
    for spec, message in [
        ("rand-m9-mstd0.5", "only the increasing ops are implemented"),
        ("augmix-m7-inc1", "give 'rand-...-inc1'"),
        ("rand-m7-w0-inc1", "unknown section 'w0'"),
        ("rand-m12-inc1", r"magnitude in \[0, 10\]"),
    ]:
        with pytest.raises(ValueError, match=message):
            ClipRandAugment.from_spec(spec)
    with pytest.raises(ValueError, match=r"uint8 frames \[T, 3, H, W\]"):
        ClipRandAugment()(torch.zeros(4, 3, 8, 8))


def test_random_erasing_erases_one_box_the_same_in_every_frame():
    clip = torch.zeros(3, 5, 24, 32)
    erased_count = 0
    for seed in range(100):
        torch.manual_seed(seed)
        out = ClipRandomErasing(0.25)(clip)
        box = out != 0
        if not box.any():
            continue
        erased_count += 1
        assert all(torch.equal(box[0, 0], box[c, t]) for c in range(3) for t in range(5))  # one box, every frame
        rows, cols = box[0, 0].any(1).sum().item(), box[0, 0].any(0).sum().item()
        assert box[0, 0].sum() == rows * cols and 0.02 * 0.9 <= rows * cols / (24 * 32) <= 1 / 3 * 1.1
        assert not torch.equal(out[:, 0], out[:, 1])  # per-pixel noise, drawn for each frame
    assert 15 <= erased_count <= 35  # probability 0.25
    assert ClipRandomErasing(0.0)(clip) is clip


class FakeVideo:
    """Stands in for decode_video: 40 frames [40, 36, 48, 3] uint8, each its own gradient; fps None."""

    def __init__(self):
        ramp = np.linspace(0, 180, 48, dtype=np.float32)[None, None, :, None]
        self.frames = (ramp + np.arange(40, dtype=np.float32)[:, None, None, None] + np.zeros((40, 36, 48, 3))).astype(
            np.uint8
        )

    def __call__(self, path, short_side):
        return self.frames, None


def clips(monkeypatch, seed=0, **augment):
    monkeypatch.setattr(video_train, "decode_video", FakeVideo())
    sampling = ClipSampling(num_frames=4, sampling_rate=2, target_fps=None, short_side=36, crop_size=32)
    dataset = video_train.VideoClips(DataIndex([("v.mp4", 0)], ["a"]), sampling, train=True, **augment)
    torch.manual_seed(seed)
    return dataset


def test_video_training_clips_are_not_augmented_by_default(monkeypatch):
    defaults = video_train.clip_augmentation({"rand_augment": None, "random_erasing": 0.0}, 32)
    assert defaults == {"rand_augment": None, "erasing": None, "crop": None}
    plain = clips(monkeypatch)
    assert (plain.rand_augment, plain.erasing) == (None, None)
    clip, label = plain[0]
    assert clip.shape == (3, 4, 32, 32) and label == 0
    pixels = clip * 0.225 + 0.45  # ClipSampling's default normalization undone
    assert ((pixels * 255 - (pixels * 255).round()).abs() < 1e-3).all()  # decoded pixels, nothing resampled


def test_video_training_clips_apply_the_configured_augmentation_to_every_frame(monkeypatch):
    augment = video_train.clip_augmentation({"rand_augment": "rand-m7-mstd0.5-inc1", "random_erasing": 0.25}, 32)
    assert augment["rand_augment"] == ClipRandAugment(7.0, 2, 0.5) and augment["erasing"] == ClipRandomErasing(0.25)
    differs = 0
    for seed in range(12):
        plain = clips(monkeypatch, seed)[0][0]
        augmented = clips(monkeypatch, seed, rand_augment=augment["rand_augment"])[0][0]
        differs += not torch.equal(plain, augmented)
    assert differs >= 6  # RandAugment ran (3/4 of the clips change)
    for seed in range(3):  # erasing runs after the crop and flip: the clip differs from the plain one in one box
        box = clips(monkeypatch, seed, erasing=ClipRandomErasing(1.0))[0][0] != clips(monkeypatch, seed)[0][0]
        assert box.any() and all(torch.equal(box[0, 0], box[c, t]) for c in range(3) for t in range(4))


def test_random_resized_crop_boxes_follow_mae_st_ranges():
    crop = ClipRandomResizedCrop(16, scale=(0.08, 1.0), aspect=(0.75, 1.3333))
    torch.manual_seed(0)
    areas, aspects = [], []
    for _ in range(400):
        top, left, h, w = crop.box(256, 340)
        assert 0 <= top <= 256 - h and 0 <= left <= 340 - w
        areas.append(h * w / (256 * 340))
        aspects.append(w / h)
    areas, aspects = torch.tensor(areas), torch.tensor(aspects)
    assert areas.min() > 0.07 and areas.max() <= 1.0 and 0.4 < areas.mean() < 0.62  # U(0.08, 1): mean 0.54
    assert aspects.min() > 0.72 and aspects.max() < 1.38
    assert 0.35 < float((aspects < 1).float().mean()) < 0.65  # log-uniform: half below 1
    # no box of the whole area fits a 2:1 frame at aspect <= 4/3: the centre crop of the widest allowed box
    assert ClipRandomResizedCrop(8, scale=(1.0, 1.0)).box(100, 200) == (0, 33, 100, 133)


def test_random_resized_crop_resizes_one_box_for_every_frame():
    clip = frames(t=3)
    whole = ClipRandomResizedCrop(12, scale=(1.0, 1.0), aspect=(32 / 24, 32 / 24))(clip)
    expected = torch.nn.functional.interpolate(clip.float(), size=(12, 12), mode="bilinear", align_corners=False)
    torch.testing.assert_close(whole, expected)  # the whole frame is the box
    torch.manual_seed(3)
    crop = ClipRandomResizedCrop(12, scale=(0.2, 0.3))
    out = crop(clip)
    torch.manual_seed(3)
    top, left, h, w = crop.box(24, 32)
    assert out.shape == (3, 3, 12, 12) and h * w < 0.35 * 24 * 32
    boxed = clip[..., top : top + h, left : left + w].float()
    torch.testing.assert_close(out, torch.nn.functional.interpolate(boxed, size=(12, 12), mode="bilinear"))
    with pytest.raises(ValueError, match="fraction"):
        ClipRandomResizedCrop(12, scale=(0.5, 1.5))


def test_video_training_clips_take_the_random_resized_crop_when_configured(monkeypatch):
    augment = video_train.clip_augmentation({"crop_scale": [0.08, 1.0], "crop_aspect": None}, 32)
    assert augment["crop"] == ClipRandomResizedCrop(32, (0.08, 1.0), (0.75, 1.3333))
    plain, cropped = clips(monkeypatch, 1)[0][0], clips(monkeypatch, 1, crop=augment["crop"])[0][0]
    assert cropped.shape == plain.shape == (3, 4, 32, 32)
    pixels = cropped * 0.225 + 0.45
    assert ((pixels * 255 - (pixels * 255).round()).abs() > 1e-2).any()  # resampled, not a plain crop
