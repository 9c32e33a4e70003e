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


def average_precision(scores: Tensor, positives: Tensor) -> float:
    """Average precision of one class: sum over score thresholds of (recall gain) x precision, as
    scikit-learn's ``average_precision_score`` (tied scores form one threshold). scores, positives: [N]."""
    order = scores.float().argsort(descending=True, stable=True)
    sorted_scores, hits = scores.float()[order], positives[order].float()
    true_pos, false_pos = hits.cumsum(0), (1 - hits).cumsum(0)
    last_of_tie = torch.ones_like(sorted_scores, dtype=torch.bool)
    last_of_tie[:-1] = sorted_scores[1:] != sorted_scores[:-1]
    true_pos, false_pos = true_pos[last_of_tie], false_pos[last_of_tie]
    precision = true_pos / (true_pos + false_pos)
    recall_gain = torch.diff(true_pos / true_pos[-1], prepend=torch.zeros(1))
    return (recall_gain * precision).sum().item()


def mean_average_precision(logits: Tensor, targets: Tensor) -> float:
    """mAP over the classes that have at least one positive (AudioSet's metric). logits, targets: [N, K] (multi-hot)."""
    if logits.shape[0] == 0:
        raise ValueError("No predictions to score (empty dataset or every file unreadable).")
    present = [k for k in range(targets.shape[1]) if targets[:, k].any()]
    if not present:
        raise ValueError("No class has a positive label in these targets; mAP is undefined.")
    return sum(average_precision(logits[:, k], targets[:, k] > 0) for k in present) / len(present)


def multilabel_metrics(logits: Tensor, targets: Tensor, reference_logits: Tensor | None = None) -> dict[str, float]:
    """mAP and, given reference logits, agreement (same top-scoring class) and kl: the mean over classes of the
    Bernoulli KL(reference || model) of the sigmoid scores, in nats. logits, targets: [N, K] (multi-hot)."""
    out = {"mAP": mean_average_precision(logits, targets)}
    if reference_logits is not None:
        out["agreement"] = agreement(logits, reference_logits)
        ref, own = reference_logits.float(), logits.float()
        log_sigmoid = torch.nn.functional.logsigmoid
        kl = log_sigmoid(ref).exp() * (log_sigmoid(ref) - log_sigmoid(own)) + log_sigmoid(-ref).exp() * (
            log_sigmoid(-ref) - log_sigmoid(-own)
        )
        out["kl"] = kl.mean().item()
    return out


@torch.no_grad()
def model_accuracy(model: torch.nn.Module, inputs: Tensor, labels: Tensor, batch: int = 128) -> float:
    """Top-1 accuracy of ``model`` on inputs [N, ...] with labels [N], in eval mode and batches of ``batch``;
    the model's train/eval mode is restored afterwards."""
    was_training = model.training
    model.eval()
    correct = sum(
        (model(inputs[i : i + batch]).argmax(-1) == labels[i : i + batch]).sum().item()
        for i in range(0, len(inputs), batch)
    )
    model.train(was_training)
    return correct / len(inputs)
