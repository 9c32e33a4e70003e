"""tokenmerge.audio: Token Merging for spectrogram ViTs (AudioMAE layout).

Bolya et al., "Token Merging: Your ViT But Faster", ICLR 2023 (arXiv 2210.09461), Sec. 5 (audio);
Huang et al., "Masked Autoencoders that Listen", NeurIPS 2022 (the model, features and checkpoints).
"""

from tokenmerge.core import ToMeConfig, ToMeHandle

from .checkpoint import load_checkpoint
from .data import build_audio_loader, load_audio
from .features import AUDIOSET, ESC50, PRESETS, SPEECH_COMMANDS, SPOKEN_WORDS, FbankPreset, fbank, spec_augment
from .model import CONFIGS, SpectrogramViT, create_model
from .patch import SpectrogramAdapter, apply_patch

__all__ = [
    "AUDIOSET",
    "CONFIGS",
    "ESC50",
    "PRESETS",
    "SPEECH_COMMANDS",
    "SPOKEN_WORDS",
    "FbankPreset",
    "SpectrogramAdapter",
    "SpectrogramViT",
    "ToMeConfig",
    "ToMeHandle",
    "apply_patch",
    "build_audio_loader",
    "create_model",
    "fbank",
    "load_audio",
    "load_checkpoint",
    "spec_augment",
]
