"""AudioMAE's features: numerically equal to a transcription of facebookresearch/AudioMAE's dataset.py."""

import math

import pytest
import torch
import torchaudio

from tokenmerge.audio.features import (
    AUDIOSET,
    ESC50,
    PRESETS,
    SPEECH_COMMANDS,
    FbankTransform,
    fbank,
    get_preset,
    spec_augment,
)


def audiomae_features(waveform, sr, melbins, target_length, mean, std, freqm=0, timem=0):
    """AudioMAE dataset.py, transcribed: _wav2fbank (no mixup, no roll_mag_aug), then __getitem__ without noise."""
    waveform = waveform - waveform.mean()
    spectrogram = torchaudio.compliance.kaldi.fbank(
        waveform,
        htk_compat=True,
        sample_frequency=sr,
        use_energy=False,
        window_type="hanning",
        num_mel_bins=melbins,
        dither=0.0,
        frame_shift=10,
    )
    pad = target_length - spectrogram.shape[0]
    if pad > 0:
        spectrogram = torch.nn.ZeroPad2d((0, 0, 0, pad))(spectrogram)
    elif pad < 0:
        spectrogram = spectrogram[0:target_length, :]
    spectrogram = spectrogram.transpose(0, 1).unsqueeze(0)  # 1, freq, time
    if freqm != 0:
        spectrogram = torchaudio.transforms.FrequencyMasking(freqm)(spectrogram)
    if timem != 0:
        spectrogram = torchaudio.transforms.TimeMasking(timem)(spectrogram)
    spectrogram = torch.transpose(spectrogram.squeeze(), 0, 1)  # time, freq
    spectrogram = (spectrogram - mean) / (std * 2)
    return spectrogram.unsqueeze(0)


def chirp(seconds: float, sr: int = 16000, channels: int = 1) -> torch.Tensor:
    t = torch.arange(int(seconds * sr)) / sr
    tone = 0.3 * torch.sin(2 * math.pi * (200 + 1500 * t) * t) + 0.01 * torch.randn(len(t), generator=gen())
    return torch.stack([tone * (c + 1) / channels + 0.05 * c for c in range(channels)])


def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@pytest.mark.parametrize("preset", [AUDIOSET, ESC50, SPEECH_COMMANDS], ids=lambda p: p.name)
@pytest.mark.parametrize("seconds", [0.5, 1.0, 2.0])
def test_fbank_equals_audiomae(preset, seconds):
    waveform = chirp(seconds)
    expected = audiomae_features(waveform, 16000, 128, preset.target_length, preset.mean, preset.std)
    got = fbank(waveform, 16000, target_length=preset.target_length, mean=preset.mean, std=preset.std)
    assert got.shape == (1, preset.target_length, 128)
    assert torch.equal(got, expected)


def test_fbank_stereo_uses_first_channel_after_global_mean_like_audiomae():
    waveform = chirp(1.0, channels=2)
    expected = audiomae_features(waveform, 16000, 128, 128, -6.845978, 5.5654526)
    assert torch.equal(fbank(waveform, 16000, target_length=128, mean=-6.845978, std=5.5654526), expected)


def test_fbank_defaults_are_audioset_and_1d_input_works():
    waveform = chirp(1.0)
    assert torch.equal(fbank(waveform[0], 16000), fbank(waveform, 16000))
    assert torch.equal(fbank(waveform, 16000), audiomae_features(waveform, 16000, 128, 1024, -4.2677393, 4.5689974))


def test_padding_and_cutting():
    waveform = chirp(1.0)  # 98 frames of 25 ms every 10 ms
    padded = fbank(waveform, 16000, target_length=128)
    assert torch.all(padded[0, 98:] == AUDIOSET.masked_value())  # raw zeros, normalized
    assert not torch.any(padded[0, :98] == AUDIOSET.masked_value())
    cut = fbank(waveform, 16000, target_length=50)
    assert cut.shape == (1, 50, 128) and torch.equal(cut, padded[:, :50])
    assert fbank(waveform, 16000, num_mel_bins=64, target_length=98).shape == (1, 98, 64)


def test_bad_waveforms_raise_clear_errors():
    with pytest.raises(TypeError, match="float"):
        fbank(torch.zeros(16000, dtype=torch.int16), 16000)
    with pytest.raises(ValueError, match="shape"):
        fbank(torch.zeros(1, 1, 16000), 16000)
    with pytest.raises(ValueError, match="too short"):
        fbank(torch.zeros(300), 16000)


def test_presets_cite_audiomae_numbers():
    assert (AUDIOSET.target_length, AUDIOSET.mean, AUDIOSET.std) == (1024, -4.2677393, 4.5689974)
    assert (AUDIOSET.freq_mask, AUDIOSET.time_mask) == (48, 192)
    assert (ESC50.target_length, ESC50.mean, ESC50.std) == (512, -6.6268077, 5.358466)
    assert (SPEECH_COMMANDS.target_length, SPEECH_COMMANDS.mean, SPEECH_COMMANDS.std) == (128, -6.845978, 5.5654526)
    assert all(preset.source and preset.num_mel_bins == 128 for preset in PRESETS.values())
    assert get_preset("esc50") is ESC50
    with pytest.raises(ValueError, match="audioset"):
        get_preset("kinetics")


def test_spec_augment_masks_whole_mel_columns_and_time_rows():
    features = fbank(chirp(1.0), 16000, target_length=98)  # no padding, which already holds the masked value
    value = AUDIOSET.masked_value()
    torch.manual_seed(0)
    masked = spec_augment(features, freq_mask=48, time_mask=0, mask_value=value) != features
    bins = masked[0].all(dim=0)
    assert bins.any() and torch.equal(masked[0], bins.expand(98, -1))  # whole frequency columns
    torch.manual_seed(0)
    masked = spec_augment(features, freq_mask=0, time_mask=60, mask_value=value) != features
    frames = masked[0].all(dim=1)
    assert frames.any() and torch.equal(masked[0], frames[:, None].expand(-1, 128))  # whole time rows


def test_spec_augment_matches_audiomae_training_features():
    waveform = chirp(2.0)
    for seed in range(5):
        torch.manual_seed(seed)
        expected = audiomae_features(waveform, 16000, 128, 1024, AUDIOSET.mean, AUDIOSET.std, freqm=48, timem=192)
        torch.manual_seed(seed)
        got = FbankTransform(AUDIOSET, train=True)(waveform, 16000)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_spec_augment_only_in_training():
    waveform = chirp(1.0)
    evaluation = FbankTransform(SPEECH_COMMANDS, train=False)
    reference = fbank(waveform, 16000, target_length=128, mean=SPEECH_COMMANDS.mean, std=SPEECH_COMMANDS.std)
    assert all(torch.equal(evaluation(waveform, 16000), reference) for _ in range(3))
    torch.manual_seed(0)
    training = [FbankTransform(SPEECH_COMMANDS, train=True)(waveform, 16000) for _ in range(3)]
    assert any(not torch.equal(features, reference) for features in training)
    assert all(features.shape == reference.shape for features in training)
