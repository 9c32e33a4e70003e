"""The embedded audio task: which of 10 spoken command words is in a noisy 1-second clip? Synthesized offline.

Words are the 10 command words of Speech Commands (Warden, arXiv 1804.03209), the keyword-spotting set that
AST and AudioMAE report on: yes, no, up, down, left, right, on, off, stop, go. Each is spoken by eSpeak NG 1.52
(bundled in the ``espeakng-loader`` wheel, called through ctypes) with a random English accent (8), voice
variant (about 100), speed (120-240 words per minute) and pitch (20-80 of 0-99), resampled from 22.05 kHz to
16 kHz, trimmed of silence, placed at a random position in a 1-second clip, and mixed with coloured Gaussian
noise (spectrum ~ 1/f^beta, beta uniform in [0, 2]: white to brown) at a signal-to-noise ratio uniform in
[5, 25] dB, measured over the utterance. The clip is then scaled to a random peak in [0.25, 0.9].

Why noise and placement: clean speech is too easy for a benchmark, and unknown position plus strong noise
makes the model find the few frames that carry the word, which is what token merging has to preserve. Measured
2026-12-02 (mean and standard deviation over time of the 128 log-mel bins, standardized, 4000 training clips of
200 utterances per word, 1000 test clips, chance 10%): logistic regression (L2 weight 1e-3, LBFGS) reaches 64.6%
on new clips of training voices and 53.3% on the validation voices; the embedded ViT 89.0% on the validation
voices (:mod:`tokenmerge.audio.embedded`).

Training and evaluation use disjoint voice variants (:data:`VALIDATION_VARIANTS`, 16 variants of 13 families,
e.g. all four ``iven`` variants; training gets the other 87 variants and the accents' default voices), so
evaluation measures generalisation to unseen speakers. Features follow AudioMAE's Speech Commands recipe
(:data:`tokenmerge.audio.features.SPOKEN_WORDS`: 128 frames of 128 mel bins), with half its SpecAugment masks.

eSpeak NG keeps state between utterances (a static pitch-flutter phase in ``wavegen.c`` that neither
``espeak_Terminate`` nor ``espeak_ng_SetRandSeed`` resets, and the Klatt voices' noise from the C library's
``rand()``), so the same word spoken twice in one process would differ. :func:`espeak_synthesize` therefore
loads a fresh copy of the library for every utterance (dlopen, speak, dlclose) and seeds ``srand(0)``; clips
are then a pure function of their arguments, identical in every process. Nothing else may hold
``libespeak-ng`` open meanwhile, or dlclose cannot reset it. Training clips are deterministic in (seed,
index): :class:`SpokenWordsDataset` speaks a fixed bank of clean utterances once (about 10 ms each) and
draws new placement and noise for every index.
"""

from __future__ import annotations

import _ctypes
import csv
import ctypes
import functools
import json
import threading
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile
import torch
import torchaudio
from torch import Tensor
from torch.utils.data import Dataset

from .features import SPOKEN_WORDS, FbankPreset, FbankTransform

WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000
SPEED_RANGE = (120, 240)  # words per minute
PITCH_RANGE = (20, 80)
SNR_RANGE = (5.0, 25.0)  # dB
NOISE_EXPONENT_RANGE = (0.0, 2.0)  # beta of a 1/f^beta power spectrum
PEAK_RANGE = (0.25, 0.9)
TRIM_THRESHOLD, TRIM_MARGIN = 0.02, 160  # of the peak; samples kept around the word
#: English accents of eSpeak NG 1.52 (``en-Shaw``, Shavian script, left out).
ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
#: Voice variants heard only in evaluation: whole families (``iven`` ... ``iven4``), about 16% of them.
VALIDATION_VARIANTS = (
    "Diogo", "Jacky", "belinda", "boris", "gustave", "iven", "iven2", "iven3", "iven4",
    "kaukovalta", "marcelo", "miguel", "pablo", "pedro", "travis", "victor",
)  # fmt: skip
SPLITS = ("train", "val")
ESPEAK_SAMPLE_RATE = 22050
_ESPEAK_SYNCHRONOUS, _ESPEAK_RATE, _ESPEAK_PITCH, _ESPEAK_UTF8 = 2, 1, 3, 1
_ESPEAK_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
_ESPEAK_ARGTYPES = {
    "espeak_Initialize": [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int],
    "espeak_ng_SetRandSeed": [ctypes.c_long],
    "espeak_SetVoiceByName": [ctypes.c_char_p],
    "espeak_SetParameter": [ctypes.c_int, ctypes.c_int, ctypes.c_int],
    "espeak_Synth": [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint]
    + [ctypes.c_void_p, ctypes.c_void_p],
}
_ESPEAK_LOCK = threading.Lock()  # the C library is process-wide: one utterance at a time


def _espeakng_loader():
    try:
        import espeakng_loader
    except ImportError as error:
        raise ImportError(
            "The spoken-words task needs the espeakng-loader wheel (libespeak-ng 1.52 and its voices): "
            "pip install espeakng-loader"
        ) from error
    return espeakng_loader


def espeak_variants() -> list[str]:
    """eSpeak NG's voice variants (``espeak-ng-data/voices/!v``), sorted; names with spaces left out."""
    folder = Path(_espeakng_loader().get_data_path()) / "voices" / "!v"
    return sorted(path.name for path in folder.iterdir() if " " not in path.name)


def espeak_synthesize(text: str, voice: str, *, rate: int = 175, pitch: int = 50) -> np.ndarray:
    """Speak ``text`` with a freshly loaded eSpeak NG (dlopen, speak, dlclose), so the result is deterministic.

    Needs ``_ctypes.dlclose`` (Linux, macOS).

    Args:
        text: what to say.
        voice: an accent of :data:`ACCENTS`, optionally ``+<variant>`` (:func:`espeak_variants`).
        rate: words per minute, 80-450.
        pitch: 0-99; 50 is the voice's own.

    Returns:
        [samples] int16 PCM at 22.05 kHz, with eSpeak's leading and trailing silence.
    """
    if not (80 <= rate <= 450 and 0 <= pitch <= 99):
        raise ValueError(f"eSpeak needs a rate in [80, 450] and a pitch in [0, 99]; got rate={rate}, pitch={pitch}.")
    loader = _espeakng_loader()
    chunks: list[np.ndarray] = []

    def collect(samples, count, events) -> int:
        if count > 0:
            chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
        return 0

    callback, encoded = _ESPEAK_CALLBACK(collect), text.encode()
    with _ESPEAK_LOCK:
        library = ctypes.CDLL(loader.get_library_path())
        for name, types in _ESPEAK_ARGTYPES.items():
            getattr(library, name).argtypes = types
        try:
            if library.espeak_Initialize(_ESPEAK_SYNCHRONOUS, 0, loader.get_data_path().encode(), 0) <= 0:
                raise RuntimeError(f"eSpeak NG failed to initialize with its data at {loader.get_data_path()}.")
            try:
                library.espeak_SetSynthCallback(callback)
                library.espeak_ng_SetRandSeed(0)
                ctypes.CDLL(None).srand(0)  # the Klatt voices draw noise from the C library's rand()
                if library.espeak_SetVoiceByName(voice.encode()) != 0:
                    raise ValueError(
                        f"eSpeak NG has no voice {voice!r}; use an accent of {ACCENTS}, optionally '+<variant>' "
                        "with a variant from espeak_variants()."
                    )
                library.espeak_SetParameter(_ESPEAK_RATE, rate, 0)
                library.espeak_SetParameter(_ESPEAK_PITCH, pitch, 0)
                status = library.espeak_Synth(encoded, len(encoded) + 1, 0, 0, 0, _ESPEAK_UTF8, None, None)
                if status != 0:
                    raise RuntimeError(f"eSpeak NG failed to speak {text!r} with voice {voice!r} (error {status}).")
                library.espeak_Synchronize()
            finally:
                library.espeak_Terminate()
        finally:
            _ctypes.dlclose(library._handle)  # unload, so the next utterance starts from fresh static state
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)


@functools.cache
def voices(split: str) -> tuple[str, ...]:
    """eSpeak voice names of a split: every accent with each variant of the split (train: also with none)."""
    _check_split(split)
    available = espeak_variants()
    missing = sorted(set(VALIDATION_VARIANTS) - set(available))
    if missing:
        raise RuntimeError(f"eSpeak NG's data lacks the validation variants {missing}; install espeakng-loader 0.2.4.")
    if split == "val":
        return tuple(f"{accent}+{variant}" for accent in ACCENTS for variant in VALIDATION_VARIANTS)
    chosen = [variant for variant in available if variant not in VALIDATION_VARIANTS]
    return (*ACCENTS, *(f"{accent}+{variant}" for accent in ACCENTS for variant in chosen))


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; use one of {SPLITS}.")


def random_voice(split: str, rng: np.random.Generator) -> tuple[str, int, int]:
    """A random (voice, speed, pitch) of a split; speed and pitch uniform in SPEED_RANGE and PITCH_RANGE."""
    names = voices(split)
    voice = names[int(rng.integers(len(names)))]
    return (
        voice,
        int(rng.integers(SPEED_RANGE[0], SPEED_RANGE[1] + 1)),
        int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1)),
    )


def speak(word: str, voice: str, *, speed: int, pitch: int) -> Tensor:
    """A clean utterance: [samples] float at 16 kHz, peak 1, silence trimmed to 10 ms around the word."""
    pcm = espeak_synthesize(word, voice, rate=speed, pitch=pitch)
    speech = torchaudio.functional.resample(torch.from_numpy(pcm).float() / 32768, ESPEAK_SAMPLE_RATE, SAMPLE_RATE)
    loud = torch.nonzero(speech.abs() > TRIM_THRESHOLD * speech.abs().max()).flatten()
    if loud.numel() == 0:
        raise RuntimeError(f"eSpeak NG produced silence for {word!r} with voice {voice!r}.")
    speech = speech[max(int(loud[0]) - TRIM_MARGIN, 0) : int(loud[-1]) + TRIM_MARGIN + 1]
    if speech.numel() > CLIP_SAMPLES:
        raise ValueError(
            f"{word!r} at speed {speed} lasts {speech.numel() / SAMPLE_RATE:.2f} s, longer than the 1 s clip; "
            f"speak faster (speeds in {SPEED_RANGE} fit)."
        )
    return speech / speech.abs().max()


class Clip(NamedTuple):
    """A noisy clip: ``waveform = speech + noise``.

    Attributes:
        waveform: [CLIP_SAMPLES] float at 16 kHz.
        speech: [CLIP_SAMPLES] the placed utterance alone (zeros outside it), at the same scale.
        snr_db: speech power over the utterance's samples / noise power, in dB.
        offset: first sample of the utterance.
    """

    waveform: Tensor
    speech: Tensor
    snr_db: float
    offset: int


def place_in_noise(utterance: Tensor, rng: np.random.Generator) -> Clip:
    """Put a clean utterance [n] at a random offset of a 1 s clip and add coloured noise at a random SNR."""
    length = utterance.numel()
    offset = int(rng.integers(CLIP_SAMPLES - length + 1))
    snr_db = float(rng.uniform(*SNR_RANGE))
    spectrum = np.fft.rfft(rng.standard_normal(CLIP_SAMPLES))
    spectrum[0] = 0.0  # no DC
    frequencies = np.fft.rfftfreq(CLIP_SAMPLES)
    frequencies[0] = 1.0
    noise = np.fft.irfft(spectrum * frequencies ** (-rng.uniform(*NOISE_EXPONENT_RANGE) / 2), CLIP_SAMPLES)
    noise = torch.from_numpy(noise / np.sqrt(np.mean(noise**2))).float()
    speech = torch.zeros(CLIP_SAMPLES)
    speech[offset : offset + length] = utterance
    noise = noise * (utterance.pow(2).mean() / 10 ** (snr_db / 10)).sqrt()
    gain = float(rng.uniform(*PEAK_RANGE)) / float((speech + noise).abs().max())
    return Clip((speech + noise) * gain, speech * gain, snr_db, offset)


def synthesize_clip(word: str, voice: str, speed: int, pitch: int, rng: np.random.Generator) -> Clip:
    """One noisy clip of ``word`` (see the module doc); deterministic in its arguments and the rng's state."""
    return place_in_noise(speak(word, voice, speed=speed, pitch=pitch), rng)


def _stream(seed: int, split: str, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(split.encode()), *keys])


class SpokenWordsDataset(Dataset):
    """Fresh noisy clips: item i is (features [1, T, F], word index); labels cycle.

    The clip of item i is deterministic in (seed, i); SpecAugment's masks (``train=True``) come from torch's
    global RNG, as in AudioMAE.

    The clean utterances (``utterances_per_word`` per word, random voices of ``split``) are spoken once, when
    the dataset is built, and kept in memory (about 50 MB and 20 s for 200 per word); every item
    places one of them in new noise.

    Args:
        length: number of items.
        seed: picks the utterance bank and every clip.
        split: whose voices speak (``"train"`` or ``"val"``).
        preset: feature settings.
        train: SpecAugment on the features (training only).
        utterances_per_word: size of the clean-utterance bank per word.
    """

    def __init__(
        self,
        length: int,
        *,
        seed: int = 0,
        split: str = "train",
        preset: FbankPreset = SPOKEN_WORDS,
        train: bool = True,
        utterances_per_word: int = 200,
    ):
        _check_split(split)
        self.length, self.seed, self.split, self.train = length, seed, split, train
        self.transform = FbankTransform(preset, train)
        self.utterances = []
        for label, word in enumerate(WORDS):
            rng = _stream(seed, split, 0, label)
            spoken = []
            for _ in range(utterances_per_word):
                voice, speed, pitch = random_voice(split, rng)
                spoken.append(speak(word, voice, speed=speed, pitch=pitch))
            self.utterances.append(spoken)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        label = index % len(WORDS)
        rng = _stream(self.seed, self.split, 1, index)
        bank = self.utterances[label]
        clip = place_in_noise(bank[int(rng.integers(len(bank)))], rng)
        return self.transform(clip.waveform, SAMPLE_RATE), label


def write_audio_dataset(root: str | Path, split: str = "val", per_class: int = 50, seed: int = 0) -> Path:
    """Write noisy clips as 16 kHz 16-bit WAV files, ``<root>/<split>.csv`` (``file,label``) and ``classes.txt``.

    Clip i of a word uses a random voice, speed and pitch of ``split`` (:func:`random_voice`); deterministic in
    ``seed``. A complete dataset with the same settings is reused (the CSV is written last, so a half-written
    folder is rewritten). Read it back with :func:`tokenmerge.audio.data.build_audio_loader`
    (``root / f"{split}.csv"``, preset :data:`tokenmerge.audio.features.SPOKEN_WORDS`).

    Returns:
        ``root``.
    """
    _check_split(split)
    root = Path(root)
    index_path, manifest_path = root / f"{split}.csv", root / f"{split}.json"
    manifest = {"words": list(WORDS), "per_class": per_class, "seed": seed, "sample_rate": SAMPLE_RATE}
    if index_path.is_file() and manifest_path.is_file() and json.loads(manifest_path.read_text()) == manifest:
        with index_path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        if len(rows) == per_class * len(WORDS) and all((root / row["file"]).is_file() for row in rows):
            return root
    (root / split).mkdir(parents=True, exist_ok=True)
    rows = []
    for label, word in enumerate(WORDS):
        for i in range(per_class):
            rng = _stream(seed, split, 2, label, i)
            voice, speed, pitch = random_voice(split, rng)
            clip = synthesize_clip(word, voice, speed, pitch, rng)
            file = f"{split}/{word}_{i:04d}.wav"
            soundfile.write(root / file, clip.waveform.numpy(), SAMPLE_RATE, subtype="PCM_16")
            rows.append((file, word))
    (root / "classes.txt").write_text("\n".join(WORDS) + "\n")
    manifest_path.write_text(json.dumps(manifest) + "\n")
    partial = index_path.with_suffix(".csv.partial")
    with partial.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("file", "label"))
        writer.writerows(rows)
    partial.replace(index_path)
    return root
