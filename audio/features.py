"""Log-mel filterbank features exactly as AudioMAE computes them, dataset presets, and SpecAugment.

Follows ``dataset.py`` (``AudiosetDataset._wav2fbank`` and ``__getitem__``) of facebookresearch/AudioMAE (Huang
et al., "Masked Autoencoders that Listen", NeurIPS 2022), which inherits it from YuanGongND/ast (Gong et al.,
"AST: Audio Spectrogram Transformer", Interspeech 2021):

1. ``waveform = waveform - waveform.mean()``: the mean over all channels and samples.
2. ``torchaudio.compliance.kaldi.fbank(waveform, htk_compat=True, sample_frequency=sr, use_energy=False,
   window_type='hanning', num_mel_bins=128, dither=0.0, frame_shift=10)``: 25 ms windows every 10 ms,
   [frames, mel]. Given several channels, kaldi's ``fbank`` reads only the first (its ``channel=-1`` default
   means channel 0), so AudioMAE uses the first channel; :func:`tokenmerge.audio.data.load_audio` keeps channel 0
   too (``channels="mean"`` mixes the channels instead).
3. Zero-pad at the end, or cut, to ``target_length`` frames.
4. SpecAugment in training only (``FrequencyMasking(freqm)`` then ``TimeMasking(timem)`` on [1, mel, time]),
   on the raw log-mel values, i.e. masked bins become 0 *before* normalization.
5. ``(fbank - mean) / (2 * std)``, then ``unsqueeze(0)``: [1, target_length, mel] (time, then frequency).

Here :func:`fbank` does steps 1-3 and 5; :func:`spec_augment` does step 4 on normalized features, filling masks
with the normalized value of 0 (:meth:`FbankPreset.masked_value`) so training inputs equal AudioMAE's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torchaudio
from torch import Tensor
from torchaudio.compliance import kaldi


@dataclass(frozen=True)
class FbankPreset:
    """Feature settings of one dataset in AudioMAE's recipes.

    Attributes:
        name: short name, the key in :data:`PRESETS`.
        target_length: frames T after padding or cutting (10 ms each).
        mean, std: dataset statistics of the raw log-mel values; features are ``(x - mean) / (2 * std)``.
        freq_mask, time_mask: SpecAugment's largest mask widths in mel bins and frames (training only).
        num_mel_bins: F, mel bins per frame.
        source: where the numbers come from.
    """

    name: str
    target_length: int
    mean: float
    std: float
    freq_mask: int
    time_mask: int
    num_mel_bins: int = 128
    source: str = ""

    def masked_value(self) -> float:
        """The normalized value of a raw 0, which AudioMAE's SpecAugment writes into masked bins."""
        return -self.mean / (2 * self.std)


AUDIOSET = FbankPreset(
    "audioset",
    target_length=1024,
    mean=-4.2677393,
    std=4.5689974,
    freq_mask=48,
    time_mask=192,
    source="AudioMAE main_finetune_as.py: norm_stats, target_length, audio_conf_train freqm=48 timem=192",
)
ESC50 = FbankPreset(
    "esc50",
    target_length=512,
    mean=-6.6268077,
    std=5.358466,
    freq_mask=24,
    time_mask=96,
    source="AudioMAE main_finetune_esc.py: norm_stats, target_length; AST egs/esc50/run_esc.sh: freqm=24 timem=96 "
    "(AudioMAE's own argparse defaults there are freqm=96 timem=24)",
)
SPEECH_COMMANDS = FbankPreset(
    "speechcommands",
    target_length=128,
    mean=-6.845978,
    std=5.5654526,
    freq_mask=48,
    time_mask=48,
    source="AudioMAE main_finetune_as.py: norm_stats, target_length; AST egs/speechcommands/run_sc.sh: freqm=48 "
    "timem=48 (AudioMAE's main_finetune_as.py applies freqm=48 timem=192 to every dataset)",
)
SPOKEN_WORDS = FbankPreset(
    "spoken_words",
    target_length=128,
    mean=-3.933410,
    std=3.742876,
    freq_mask=24,
    time_mask=24,
    source="tokenmerge.audio.spoken_words: Speech Commands' length; masks half of its 48 (a word lasts 25-60 frames, "
    "so a 48-frame time mask could erase it); mean and std of the raw log-mel values, padding included as in AST's "
    "get_norm_stats.py, of SpokenWordsDataset(2000, seed=0, train=False) items",
)
#: Presets by name.
PRESETS = {preset.name: preset for preset in (AUDIOSET, ESC50, SPEECH_COMMANDS, SPOKEN_WORDS)}


def get_preset(name: str) -> FbankPreset:
    """The preset called ``name`` (a key of :data:`PRESETS`)."""
    if name not in PRESETS:
        raise ValueError(f"Unknown fbank preset {name!r}; choose one of {sorted(PRESETS)} or build an FbankPreset.")
    return PRESETS[name]


def fbank(
    waveform: Tensor,
    sample_rate: int,
    *,
    num_mel_bins: int = 128,
    target_length: int = 1024,
    mean: float = AUDIOSET.mean,
    std: float = AUDIOSET.std,
) -> Tensor:
    """AudioMAE's evaluation features of one clip (module doc, steps 1-3 and 5).

    Args:
        waveform: [samples] or [channels, samples] float audio; only channel 0 is used (as in AudioMAE), after
            subtracting the mean over all channels.
        sample_rate: Hz of ``waveform`` (AudioMAE's models expect 16 kHz).
        num_mel_bins: F.
        target_length: T; shorter clips are zero-padded (before normalization), longer ones cut.
        mean, std: raw log-mel statistics of the dataset (defaults: AudioSet's).

    Returns:
        [1, target_length, num_mel_bins] normalized log-mel features (time, then frequency).
    """
    if not waveform.is_floating_point():
        raise TypeError(f"waveform must be a float tensor, got {waveform.dtype}; scale integer PCM to [-1, 1] first.")
    if waveform.dim() == 1:
        waveform = waveform.unsqueeze(0)
    if waveform.dim() != 2:
        raise ValueError(f"waveform must be [samples] or [channels, samples], got shape {tuple(waveform.shape)}.")
    window = int(sample_rate * 0.025)
    if waveform.shape[1] < window:
        raise ValueError(
            f"waveform has {waveform.shape[1]} samples, fewer than one 25 ms window ({window} at {sample_rate} Hz); "
            "the clip is too short for filterbank features."
        )
    waveform = waveform - waveform.mean()
    features = kaldi.fbank(
        waveform,
        htk_compat=True,
        sample_frequency=sample_rate,
        use_energy=False,
        window_type="hanning",
        num_mel_bins=num_mel_bins,
        dither=0.0,
        frame_shift=10,
    )
    features = pad_or_cut(features, target_length)
    return ((features - mean) / (2 * std)).unsqueeze(0)


def pad_or_cut(features: Tensor, target_length: int) -> Tensor:
    """[frames, F] -> [target_length, F]: zero frames appended at the end, or the first target_length kept."""
    missing = target_length - features.shape[0]
    if missing > 0:
        return torch.nn.functional.pad(features, (0, 0, 0, missing))
    return features[:target_length]


def spec_augment(features: Tensor, *, freq_mask: int, time_mask: int, mask_value: float = 0.0) -> Tensor:
    """SpecAugment as AudioMAE trains: one frequency mask, then one time mask, each of random width.

    Widths are drawn uniformly below ``freq_mask`` / ``time_mask`` (torchaudio ``FrequencyMasking`` and
    ``TimeMasking``, global torch RNG). Use it on training inputs only; evaluation features stay unmasked.

    Args:
        features: [1, T, F] (or [..., T, F]) features from :func:`fbank`.
        freq_mask: largest frequency mask in mel bins; 0 for none.
        time_mask: largest time mask in frames; 0 for none.
        mask_value: value written into masked bins; pass :meth:`FbankPreset.masked_value` to match AudioMAE,
            which masks before normalizing.

    Returns:
        Masked copy of ``features``, same shape.
    """
    spectrogram = features.transpose(-1, -2)  # torchaudio masks [..., freq, time]
    if freq_mask > 0:
        spectrogram = torchaudio.transforms.FrequencyMasking(freq_mask)(spectrogram, mask_value)
    if time_mask > 0:
        spectrogram = torchaudio.transforms.TimeMasking(time_mask)(spectrogram, mask_value)
    return spectrogram.transpose(-1, -2).contiguous()


@dataclass(frozen=True)
class FbankTransform:
    """Waveform -> features [1, T, F] with a preset; SpecAugment on when ``train`` is True.

    Attributes:
        preset: feature settings.
        train: apply :func:`spec_augment` with the preset's mask widths.
    """

    preset: FbankPreset = AUDIOSET
    train: bool = False

    def __call__(self, waveform: Tensor, sample_rate: int) -> Tensor:
        """waveform: [samples] or [channels, samples] at ``sample_rate`` Hz -> [1, T, F]."""
        p = self.preset
        features = fbank(
            waveform, sample_rate, num_mel_bins=p.num_mel_bins, target_length=p.target_length, mean=p.mean, std=p.std
        )
        if self.train:
            features = spec_augment(features, freq_mask=p.freq_mask, time_mask=p.time_mask, mask_value=p.masked_value())
        return features
