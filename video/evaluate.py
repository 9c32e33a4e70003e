"""Accuracy-vs-speed evaluation of Token Merging on video classifiers, with MAE-ST's multi-view testing.

Each test video gives V views (temporal clips x spatial crops); the model's softmax scores are averaged over
the views, as MAE-ST (and SlowFast) test, and the log of the averaged scores serves as the logits for top-1,
top-5, agreement and KL. Throughput is measured per view (one clip per sample), so speedups compare the
model, not the number of views.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tokenmerge.experiments.evaluation import Setting, sweep_settings

from .patch import SpatiotemporalAdapter


def multiview_forward(model: nn.Module, clips: Tensor) -> Tensor:
    """clips [B, V, 3, T, H, W] (or [B, 3, T, H, W]) -> [B, K] log of the view-averaged softmax scores."""
    if clips.dim() == 5:
        return model(clips).float().log_softmax(-1)
    batch, views = clips.shape[:2]
    probs = model(clips.flatten(0, 1)).float().softmax(-1).view(batch, views, -1).mean(1)
    return probs.clamp_min(torch.finfo(probs.dtype).tiny).log()


def sweep(model: nn.Module, loader, settings: list[Setting], **options) -> list[dict]:
    """Evaluate every setting (method, r, merge scope) on an unpatched SpatiotemporalViT; restores it afterwards.

    Args:
        model: an unpatched :class:`~tokenmerge.video.SpatiotemporalViT`.
        loader: batches whose inputs are [B, V, 3, T, H, W] (see :func:`tokenmerge.video.data.build_video_loader`).
        settings: methods, schedules and scopes ("spacetime" / "frame"); "tome r=0" is added first as the reference.
        **options: the keywords of :func:`tokenmerge.experiments.evaluation.sweep_settings` (``prop_attn``,
            ``device``, ``throughput_batch`` (8 here), ``throughput_rounds``, ``throughput_threads``, ``dtype``,
            ``reference_cache``, ``prediction_dir``); the forward averages the views (:func:`multiview_forward`).
    """
    input_shape = (model.patch_embed.proj.in_channels, *model.patch_embed.input_size)
    options = {"throughput_batch": 8, **options, "forward": multiview_forward}
    return sweep_settings(model, SpatiotemporalAdapter(), loader, settings, input_shape, **options)
