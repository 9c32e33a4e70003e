"""Accuracy-vs-speed evaluation of Token Merging on spectrogram classifiers.

Multi-label sets (AudioSet) are scored by mAP over classes, single-label sets (ESC-50, Speech Commands, the
embedded spoken words) by top-1/top-5; both report agreement and KL divergence with the unmerged model,
throughput, FLOPs and the FLOPs-ideal speedup (:func:`tokenmerge.experiments.evaluation.sweep_settings`).
"""

from __future__ import annotations

from torch import nn

from tokenmerge.experiments.evaluation import Setting, sweep_settings
from tokenmerge.experiments.metrics import classification_metrics, multilabel_metrics

from .patch import SpectrogramAdapter


def sweep(model: nn.Module, loader, settings: list[Setting], *, multilabel: bool = False, **options) -> list[dict]:
    """Evaluate every setting (method, r) on a SpectrogramViT; the model is left as it was.

    Args:
        model: a :class:`~tokenmerge.audio.SpectrogramViT`.
        loader: batches of features [B, 1, T, F] (see :func:`tokenmerge.audio.build_audio_loader`).
        settings: methods and schedules; "tome r=0" is added first as the reference.
        multilabel: score by mAP (multi-hot targets [B, K]) instead of top-1 (class indices [B]).
        **options: the keywords of :func:`tokenmerge.experiments.evaluation.sweep_settings` (``prop_attn``,
            ``device``, ``throughput_batch``, ``throughput_rounds``, ``throughput_threads``, ``dtype``,
            ``reference_cache``, ``prediction_dir``).
    """
    input_shape = (model.in_chans, model.target_length, model.num_mel_bins)
    metrics = multilabel_metrics if multilabel else classification_metrics
    return sweep_settings(model, SpectrogramAdapter(), loader, settings, input_shape, metrics=metrics, **options)
