"""AudioMAE's fine-tuning augmentations: patch masking of whole time columns / frequency rows in training forwards
(also with Token Merging on), per-sample waveform mixup with soft targets, and the roll and gain of a waveform."""

import csv

import numpy as np
import pytest
import soundfile
import torch

from tokenmerge.audio import SpectrogramViT, apply_patch, load_checkpoint
from tokenmerge.audio.data import AudioDataset, load_audio, load_index, mix_waveforms, roll_and_scale
from tokenmerge.audio.features import AUDIOSET, FbankPreset, FbankTransform, fbank
from tokenmerge.audio.model import PatchGridMasking
from tokenmerge.experiments.data import Unreadable

from .audiomae_reference import audiomae_forward, audiomae_mask_2d, synthetic_audiomae_state

# The AudioSet input (1024 frames x 128 mel bins, a 64 x 8 grid of 16 x 16 patches) on a tiny transformer.
AUDIOSET_TINY = dict(target_length=1024, num_mel_bins=128, embed_dim=16, depth=2, num_heads=2, num_classes=3)
MASK = dict(mask_t_prob=0.2, mask_f_prob=0.2)
KEPT_T, KEPT_F = int(64 * (1 - 0.2)), int(8 * (1 - 0.2))  # AudioMAE models_vit.py:120, 133: 51 and 6


def _model(**overrides) -> SpectrogramViT:
    torch.manual_seed(0)
    return SpectrogramViT(**{**AUDIOSET_TINY, "drop_path_rate": 0.0, **overrides})


def _spectrograms(batch=2, frames=1024, bins=128):
    return torch.randn(batch, 1, frames, bins, generator=torch.Generator().manual_seed(1))


def _tokens_entering_the_blocks(model, x) -> torch.Size:
    shapes = []
    hook = model.blocks[0].norm1.register_forward_hook(lambda module, inputs, output: shapes.append(inputs[0].shape))
    try:
        model(x)
    finally:
        hook.remove()
    return shapes[0]


# --- patch masking ---------------------------------------------------------------------------------------------------


def test_training_forwards_keep_51_time_columns_and_6_frequency_rows_eval_keeps_all():
    model, x = _model(**MASK), _spectrograms()
    assert model.train().patch_drop.kept_grid == (KEPT_T, KEPT_F)
    assert _tokens_entering_the_blocks(model, x) == (2, 1 + KEPT_T * KEPT_F, 16)  # 1 + 306
    assert _tokens_entering_the_blocks(model.eval(), x) == (2, 1 + 64 * 8, 16)


def test_the_kept_tokens_are_whole_columns_and_rows_per_sample_with_the_class_token_first():
    grid, batch = (64, 8), 3
    t, f = torch.meshgrid(torch.arange(64.0), torch.arange(8.0), indexing="ij")
    patches = torch.stack([t.flatten(), f.flatten()], dim=-1).expand(batch, -1, -1)  # token (t, f) holds [t, f]
    x = torch.cat([torch.full((batch, 1, 2), -1.0), patches], dim=1)
    torch.manual_seed(5)
    out = PatchGridMasking(grid, **MASK).train()(x)
    assert out.shape == (batch, 1 + KEPT_T * KEPT_F, 2) and (out[:, 0] == -1).all()
    columns = []
    for sample in out[:, 1:]:
        kept = {(int(a), int(b)) for a, b in sample.tolist()}
        times, freqs = {a for a, _ in kept}, {b for _, b in kept}
        assert (len(times), len(freqs)) == (KEPT_T, KEPT_F) and len(kept) == KEPT_T * KEPT_F
        assert kept == {(a, b) for a in times for b in freqs}  # whole time columns x whole frequency rows
        columns.append(frozenset(times))
    assert len(set(columns)) == batch  # each sample its own draw


def test_training_forward_equals_audiomae_masked_forward(tmp_path):
    """Same draws as AudioMAE's random_masking_2d (columns, then rows), after the position embeddings, class token
    kept: our training logits equal the reference's for the same seed."""
    state = synthetic_audiomae_state(frames=1024, bins=128, patch=16, dim=16, depth=2, classes=3)
    torch.save({"model": state}, tmp_path / "ft.pth")
    model = load_checkpoint(_model(**MASK), tmp_path / "ft.pth").train()
    x = _spectrograms()
    torch.manual_seed(7)
    ours = model(x)
    torch.manual_seed(7)
    expected = audiomae_forward(state, x, patch=16, heads=2, **MASK)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-5)
    torch.manual_seed(8)
    assert not torch.allclose(model(x), expected, rtol=1e-4, atol=1e-5)  # another draw, other tokens
    tokens = torch.randn(3, 1 + 64 * 8, 4)  # the kept tokens in AudioMAE's order too (it matters to merging)
    torch.manual_seed(9)
    ours = PatchGridMasking((64, 8), **MASK).train()(tokens)
    torch.manual_seed(9)
    assert torch.equal(ours, torch.cat([tokens[:, :1], audiomae_mask_2d(tokens[:, 1:], (64, 8), **MASK)], dim=1))


def test_eval_mode_and_zero_probabilities_equal_the_model_without_masking():
    plain, x = _model(), _spectrograms()
    masked = _model(**MASK)
    masked.load_state_dict(plain.state_dict())
    assert torch.equal(masked.eval()(x), plain.eval()(x))
    zero = _model(mask_t_prob=0.0, mask_f_prob=0.0)
    zero.load_state_dict(plain.state_dict())
    assert torch.equal(zero.train()(x), plain.train()(x))
    tokens = torch.randn(2, 1 + 64 * 8, 4)
    assert torch.equal(PatchGridMasking((64, 8)).train()(tokens), tokens)
    only_time = PatchGridMasking((64, 8), mask_t_prob=0.2).train()(tokens)
    assert only_time.shape == (2, 1 + KEPT_T * 8, 4)


def test_a_merging_model_trains_on_the_masked_tokens():
    model, x = _model(**MASK), _spectrograms()
    handle = apply_patch(model, r=8)
    model.train()
    assert _tokens_entering_the_blocks(model, x) == (2, 1 + KEPT_T * KEPT_F, 16)
    tokens, _ = handle.forward_tokens(x)
    assert tokens.shape[1] == handle.tokens_per_layer(1 + KEPT_T * KEPT_F)[-1] == 307 - 16
    model(x).sum().backward()
    assert model.patch_embed.proj.weight.grad.abs().sum() > 0
    assert _tokens_entering_the_blocks(model.eval(), x) == (2, 513, 16)


@pytest.mark.parametrize("setting", [dict(mask_t_prob=1.0), dict(mask_f_prob=-0.1), dict(mask_f_prob=0.9)])
def test_masking_that_keeps_no_line_is_refused(setting):
    with pytest.raises(ValueError, match="mask_"):
        _model(**setting)  # 0.9 of 8 frequency rows keeps int(0.8) = 0


def test_masking_is_not_architecture():
    assert "mask_t_prob" not in _model(**MASK).arch


# --- waveform mixup, roll and gain -----------------------------------------------------------------------------------

#: Features without SpecAugment (no draws), so that a training item can be recomputed exactly.
PLAIN = FbankPreset("plain", target_length=64, mean=AUDIOSET.mean, std=AUDIOSET.std, freq_mask=0, time_mask=0)
LENGTHS = {"a.wav": 8000, "b.wav": 5000, "c.wav": 11000}  # b shorter than a (zero-padded), c longer (cut)


def _write(path, rows):
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


@pytest.fixture
def index(tmp_path):
    """Three clips, each with its own class (Dog, Cat, Car), as a multi-label index."""
    for i, (name, samples) in enumerate(LENGTHS.items()):
        rng = np.random.default_rng(i)
        wave = (
            0.2 * np.sin(2 * np.pi * (300 + 400 * i) * np.arange(samples) / 16000)
            + 0.05
            + 0.05 * rng.standard_normal(samples)
        )
        soundfile.write(tmp_path / name, wave.astype(np.float32), 16000)
    classes = _write(
        tmp_path / "classes.csv",
        [("index", "mid", "display_name"), (0, "/m/a", "Dog"), (1, "/m/b", "Cat"), (2, "/m/c", "Car")],
    )
    rows = [("file", "labels"), ("a.wav", "/m/a"), ("b.wav", "/m/b"), ("c.wav", "/m/c")]
    return load_index(_write(tmp_path / "train.csv", rows), classes)


def _features(waveform):
    return fbank(waveform, 16000, num_mel_bins=128, target_length=64, mean=PLAIN.mean, std=PLAIN.std)


def test_a_mixed_item_is_the_lambda_mixture_of_both_clips_and_of_their_targets(index):
    dataset = AudioDataset(index, PLAIN, train=True, mixup=1.0)
    a = load_audio(index.samples[0][0])
    seen = set()
    for seed in range(40):
        torch.manual_seed(seed)
        features, target = dataset[0]
        partner = int(target[1:].argmax()) + 1
        if target[partner] == 0:
            continue  # mixed with itself
        seen.add(partner)
        lam = float(target[0])
        assert 0.05 < lam < 0.95 and target[partner] == pytest.approx(1 - lam) and target.sum() == pytest.approx(1)
        b = load_audio(index.samples[partner][0])
        b = b - b.mean()
        b = torch.cat([b, torch.zeros(len(a) - len(b))]) if len(b) < len(a) else b[: len(a)]
        mixed = lam * (a - a.mean()) + (1 - lam) * b
        torch.testing.assert_close(features, _features(mixed - mixed.mean()), rtol=1e-4, atol=1e-4)
    assert seen == {1, 2}  # a shorter and a longer partner


def test_mixup_draws_a_partner_with_its_probability_uniformly(index):
    dataset = AudioDataset(index, PLAIN, train=True, mixup=0.5)
    torch.manual_seed(0)
    partners = [dataset.mix_partner() for _ in range(6000)]
    mixed = [p for p in partners if p is not None]
    assert abs(len(mixed) / len(partners) - 0.5) < 0.02
    assert np.allclose(np.bincount(mixed, minlength=3) / len(mixed), 1 / 3, atol=0.025)  # itself included
    assert AudioDataset(index, PLAIN, train=True).mix_partner() is None


def test_defaults_change_nothing(index):
    """Off by default: the training item is the features of the file (SpecAugment's draws only), as before."""
    path = index.samples[1][0]
    for dataset in (
        AudioDataset(index, AUDIOSET, train=True),
        AudioDataset(index, AUDIOSET, train=True, mixup=0.0, roll_mag_aug=False),
    ):
        torch.manual_seed(3)
        features, target = dataset[1]
        after = torch.get_rng_state()
        torch.manual_seed(3)
        assert torch.equal(features, FbankTransform(AUDIOSET, True)(load_audio(path), 16000))
        assert torch.equal(torch.get_rng_state(), after)  # no extra draw
        assert torch.equal(target, torch.tensor([0.0, 1.0, 0.0]))


def test_roll_and_scale_is_a_circular_shift_times_a_gain_in_half_to_one_and_a_half():
    waveform = torch.randn(500, generator=torch.Generator().manual_seed(0))
    rolled = torch.stack([waveform.roll(k) for k in range(500)])
    torch.manual_seed(0)
    shifts, gains = set(), []
    for _ in range(200):
        out = roll_and_scale(waveform)
        shift = int(torch.argmax(rolled @ out))  # the best-matching circular shift
        gain = float(out.norm() / waveform.norm())
        torch.testing.assert_close(out, gain * waveform.roll(shift))
        assert 0.5 <= gain <= 1.5
        shifts.add(shift)
        gains.append(gain)
    assert len(shifts) > 100 and abs(np.mean(gains) - 1) < 0.03 and np.std(gains) > 0.05  # Beta(10, 10) + 0.5
    gain_only = roll_and_scale(waveform, shift=False)
    torch.testing.assert_close(gain_only, float(gain_only[0] / waveform[0]) * waveform)


def test_roll_and_gain_apply_to_both_clips_before_they_mix(index):
    """The draws in AudioMAE's order: the partner, each clip's roll and gain after its mean removal, then lambda."""
    dataset = AudioDataset(index, PLAIN, train=True, mixup=1.0, roll_mag_aug=True)
    clips = [load_audio(path) for path, _ in index.samples]
    torch.manual_seed(11)
    features, target = dataset[0]
    torch.manual_seed(11)
    partner = dataset.mix_partner()
    first, second = (roll_and_scale(clips[i] - clips[i].mean()) for i in (0, partner))
    lam = float(torch.distributions.Beta(10.0, 10.0).sample())
    torch.testing.assert_close(features, _features(mix_waveforms(first, second, lam)))
    assert target[0] == pytest.approx(lam if partner else 1.0)
    torch.manual_seed(11)
    unrolled, _ = AudioDataset(index, PLAIN, train=True, mixup=1.0)[0]
    assert not torch.allclose(features, unrolled)
    only_gain = AudioDataset(index, PLAIN, train=True, roll_mag_aug=True, roll_shift=False)
    torch.manual_seed(2)
    features, _ = only_gain[0]
    torch.manual_seed(2)
    torch.testing.assert_close(features, _features(roll_and_scale(clips[0] - clips[0].mean(), shift=False)))


def test_mixup_needs_multi_label_training_data_and_an_unreadable_partner_is_reported(index, tmp_path):
    single = load_index(
        _write(tmp_path / "single.csv", [("file", "label"), ("a.wav", "x"), ("b.wav", "y")]), ["x", "y"]
    )
    with pytest.raises(ValueError, match="single-label"):
        AudioDataset(single, PLAIN, train=True, mixup=0.5)
    AudioDataset(single, PLAIN, train=True, roll_mag_aug=True)  # roll and gain need no soft targets
    with pytest.raises(ValueError, match="train=True"):
        AudioDataset(index, PLAIN, mixup=0.5)
    with pytest.raises(ValueError, match="probability"):
        AudioDataset(index, PLAIN, train=True, mixup=1.5)
    (tmp_path / "c.wav").write_bytes(b"RIFF not a wave" * 20)
    dataset = AudioDataset(index, PLAIN, train=True, mixup=1.0)
    for seed in range(30):
        torch.manual_seed(seed)
        item = dataset[0]
        if isinstance(item, Unreadable):
            assert item.path.endswith("c.wav") and "a.wav" in item.error
            break
    else:
        pytest.fail("the corrupt partner was never drawn")
