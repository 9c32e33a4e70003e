"""Classification metrics for Token Merging sweeps: accuracy, and closeness to the unmerged model.

Besides top-1/top-5, ToMe sweeps report agreement (same top-1 as the unmerged model) and the KL
divergence from the unmerged model's predictive distribution: they separate merging from random
dropping even where accuracy does not (measured here on small models, see DESIGN.md).
"""

from __future__ import annotations

import torch
from torch import Tensor


def topk_accuracy(logits: Tensor, targets: Tensor, k: int = 1) -> float:
    """Fraction of samples whose target is among the k highest logits. logits: [N, K]; targets: [N]."""
    if logits.shape[0] == 0:
        raise ValueError("No predictions to score (empty dataset or every file unreadable).")
    k = min(k, logits.shape[-1])
    hits = (logits.topk(k, dim=-1).indices == targets[:, None]).any(-1)
    return hits.float().mean().item()


def agreement(logits: Tensor, reference_logits: Tensor) -> float:
    """Fraction of samples with the same top-1 class as the reference (unmerged) model. Both [N, K]."""
    return (logits.argmax(-1) == reference_logits.argmax(-1)).float().mean().item()


def kl_divergence(logits: Tensor, reference_logits: Tensor) -> float:
    """Mean KL(reference || model) of the softmax distributions, in nats. Both [N, K]."""
    ref = reference_logits.float().log_softmax(-1)
    return torch.nn.functional.kl_div(
        logits.float().log_softmax(-1), ref, log_target=True, reduction="batchmean"
    ).item()


def classification_metrics(logits: Tensor, targets: Tensor, reference_logits: Tensor | None = None) -> dict[str, float]:
    """top1, top5 and, given reference logits, agreement and kl. logits: [N, K]; targets: [N]."""
    out = {"top1": topk_accuracy(logits, targets, 1), "top5": topk_accuracy(logits, targets, 5)}
    if reference_logits is not None:
        out["agreement"] = agreement(logits, reference_logits)
        out["kl"] = kl_divergence(logits, reference_logits)
    return out
