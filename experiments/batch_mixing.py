"""Batch mixup and CutMix with the switch between them, as timm's ``Mixup`` in batch mode and MAE-ST's
``util/decoder/mixup.py`` do it.

Each training batch is, with probability ``mixup_prob``, mixed with the same batch in reverse order (sample i with
sample B-1-i): by mixup (``lam * x + (1 - lam) * x.flip(0)``, lambda ~ Beta(mixup_alpha, mixup_alpha)) or by CutMix
(a box of the last two dims pasted from ``x.flip(0)``, lambda ~ Beta(cutmix_alpha, cutmix_alpha), then corrected to
the share of the input left uncovered). With both on, CutMix is chosen with probability ``mixup_switch_prob``. The
targets are mixed with the same lambda (:func:`tokenmerge.experiments.training_recipe.training_loss`). Every draw
comes from torch's global RNG, which the training loop seeds per process and saves in its checkpoints.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .training_recipe import TrainConfig

#: What CutMix cuts its box from: the last two dims of each of these layouts.
CUTMIX_LAYOUTS = "images [B, C, H, W], clips [B, C, T, H, W] (the same box in every frame) or spectrograms [B, 1, T, F]"


def mixup(inputs: Tensor, lam: float) -> Tensor:
    """Mix a batch with its reverse: ``lam * inputs + (1 - lam) * inputs.flip(0)``.

    inputs: [B, ...] -> [B, ...].
    """
    return inputs * lam + inputs.flip(0) * (1 - lam)


def cutmix_box(height: int, width: int, lam: float) -> tuple[tuple[int, int, int, int], float]:
    """A random box covering about ``1 - lam`` of a ``height`` x ``width`` plane, and lambda corrected to it.

    The box has sides ``int(side * sqrt(1 - lam))`` around a uniformly drawn centre, clipped to the plane (MAE-ST
    util/decoder/mixup.py:69-89, timm's ``rand_bbox``); the corrected lambda is the share left uncovered
    (mixup.py:92-108). Returns ((top, bottom, left, right), corrected lambda), bottom and right exclusive.
    """
    ratio = math.sqrt(1 - lam)
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy, cx = int(torch.randint(height, ())), int(torch.randint(width, ()))
    top, bottom = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
    left, right = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
    return (top, bottom, left, right), 1 - (bottom - top) * (right - left) / (height * width)


def check_cutmix_layout(inputs: Tensor) -> None:
    """Raise a ``ValueError`` saying what CutMix expects unless ``inputs`` has 4 or 5 dims."""
    if inputs.ndim not in (4, 5):
        raise ValueError(
            f"cutmix cuts a box out of the last two dims of {CUTMIX_LAYOUTS}; got inputs of shape "
            f"{tuple(inputs.shape)}. Set train.cutmix_alpha=0 for inputs of another layout."
        )


def cutmix(inputs: Tensor, lam: float) -> tuple[Tensor, float]:
    """Paste a box of the reversed batch into the batch: the box of :func:`cutmix_box` on the last two dims.

    inputs: [B, C, H, W], [B, C, T, H, W] or [B, 1, T, F] -> (the mixed batch, a new tensor of the same shape;
    lambda corrected to the box).
    """
    check_cutmix_layout(inputs)
    (top, bottom, left, right), lam = cutmix_box(inputs.shape[-2], inputs.shape[-1], lam)
    mixed = inputs.clone()
    mixed[..., top:bottom, left:right] = inputs.flip(0)[..., top:bottom, left:right]
    return mixed, lam


def mix_batch(inputs: Tensor, config: TrainConfig) -> tuple[Tensor, float]:
    """Mix a training batch as ``config`` says (mixup_alpha, cutmix_alpha, mixup_prob, mixup_switch_prob).

    inputs: [B, ...] (for CutMix one of :data:`CUTMIX_LAYOUTS`) -> (mixed inputs [B, ...], lambda: the weight of
    each sample's own target; 1.0 and ``inputs`` itself when the batch is not mixed). The draws follow MAE-ST
    util/decoder/mixup.py:150-167: whether to mix, then mixup or CutMix, then lambda.
    """
    use_mixup, use_cutmix = config.mixup_alpha > 0, config.cutmix_alpha > 0
    if not (use_mixup or use_cutmix):
        return inputs, 1.0
    if use_cutmix:
        check_cutmix_layout(inputs)  # on every batch, not only those that draw CutMix
    if config.mixup_prob < 1 and float(torch.rand(())) >= config.mixup_prob:
        return inputs, 1.0
    if use_mixup and use_cutmix:
        use_cutmix = float(torch.rand(())) < config.mixup_switch_prob
    alpha = config.cutmix_alpha if use_cutmix else config.mixup_alpha
    lam = torch.distributions.Beta(alpha, alpha).sample().item()
    if use_cutmix:
        return cutmix(inputs, lam)
    return mixup(inputs, lam), lam
