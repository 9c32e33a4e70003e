"""tokenmerge.audio: Token Merging for spectrogram ViTs (AudioMAE layout).

Bolya et al., "Token Merging: Your ViT But Faster", ICLR 2023 (arXiv 2210.09461), Sec. 5 (audio);
Huang et al., "Masked Autoencoders that Listen", NeurIPS 2022 (the model, features and checkpoints).

The same API as every modality (see :mod:`tokenmerge.image`): ``create_model``, ``load_checkpoint``,
``load_pretrained_encoder``, ``load_embedded_model``, ``load_model``, ``apply_patch``, ``visualize_merges``.
"""

from tokenmerge.core import ToMeConfig, ToMeHandle

from .checkpoint import load_checkpoint, load_model, load_pretrained_encoder
from .data import build_audio_loader, load_audio
from .embedded import load_embedded_model
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
    "load_embedded_model",
    "load_model",
    "load_pretrained_encoder",
    "spec_augment",
    "visualize_merges",
]


def __getattr__(name: str):
    # Imported on first use, so `python -m tokenmerge.audio.visualize` does not find its module already loaded.
    if name == "visualize_merges":
        from .visualize import visualize_merges

        return visualize_merges
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
