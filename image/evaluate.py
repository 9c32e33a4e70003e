"""Accuracy-vs-speed evaluation of Token Merging on image classifiers (``experiments.evaluation`` on timm ViTs).

For each setting (method, schedule) it reports top-1, top-5, agreement and KL divergence with the
unmerged model, throughput (interleaved rounds, median; same fused attention for every setting),
FLOPs and the FLOPs-ideal speedup, the way the ToMe paper's tables pair accuracy with speed.
"""

from __future__ import annotations

from timm.data import resolve_data_config
from torch import nn

from tokenmerge.experiments.evaluation import Setting, format_table, predict, sweep_settings, write_results

from .patch import TimmViTAdapter

__all__ = ["Setting", "format_table", "predict", "sweep", "write_results"]


def sweep(model: nn.Module, loader, settings: list[Setting], **options) -> list[dict]:
    """Evaluate every setting on an unpatched timm ViT (patched during the sweep, restored afterwards).

    Args:
        model: an unpatched timm ViT.
        loader: evaluation batches (see :func:`tokenmerge.image.data.build_eval_loader`).
        settings: methods and schedules; "tome r=0" is always added first as the reference.
        **options: the keywords of :func:`tokenmerge.experiments.evaluation.sweep_settings` (``prop_attn``,
            ``device``, ``throughput_batch``, ``throughput_rounds``, ``throughput_threads``, ``dtype``,
            ``reference_cache``, ``prediction_dir``).

    Returns:
        One row per setting (first: the unmerged reference).
    """
    input_shape = tuple(resolve_data_config({}, model=model)["input_size"])  # what the loader's transform produces
    return sweep_settings(model, TimmViTAdapter(), loader, settings, input_shape, **options)
