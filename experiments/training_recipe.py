"""The training recipe: hyper-parameters, learning-rate schedule, parameter groups, loss, one step.

Follows timm and MAE/AudioMAE fine-tuning: AdamW with no weight decay on biases, norms and other 1-d
parameters, position embeddings and class/distillation/register tokens, optionally with layer-wise learning-rate
decay (:mod:`tokenmerge.experiments.layer_decay`); linear warm-up, then cosine decay to ``min_lr``; label
smoothing for single-label cross-entropy, BCE-with-logits for multi-hot targets; the loss of a batch mixed with its
reverse (mixup or CutMix: :mod:`tokenmerge.experiments.batch_mixing`); optional gradient-norm clipping and bf16
autocast. The loop that runs it (epochs, DDP, repeated augmentation, weighted sampling, evaluation, checkpoints) is
:mod:`tokenmerge.experiments.training`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .data import Batch
from .throughput import ThroughputResult, _result, _time_call

NO_DECAY_NAMES = ("pos_embed", "cls_token", "dist_token", "reg_token", "mask_token")


@dataclass
class TrainConfig:
    """Training hyper-parameters (checked when created).

    Attributes:
        steps: total optimizer steps; the loader is iterated epoch after epoch until then.
        batch_size: samples drawn per process and step (the global batch is batch_size x processes); with
            ``repeat_aug`` k the model sees k x batch_size inputs per process and step.
        lr, min_lr: peak learning rate after warm-up, and the rate the cosine decay reaches at the last step.
        weight_decay: AdamW decay on the weight matrices only (see :func:`parameter_groups`).
        layer_decay: layer-wise learning-rate decay (MAE / MAE-ST / AudioMAE fine-tuning): block i of L runs at
            ``lr * layer_decay ** (L - i)``, the embeddings at ``lr * layer_decay ** (L + 1)``, the head at ``lr``
            (:func:`tokenmerge.experiments.layer_decay.layer_decay_groups`). None or 1: every parameter at ``lr``.
        warmup_steps: linear warm-up from lr / warmup_steps to lr.
        label_smoothing: single-label cross-entropy only.
        multilabel: targets are multi-hot floats [B, K], loss BCE-with-logits (else class indices [B]).
        mixup_alpha: 0 = off; else mix each batch with its reverse, lambda ~ Beta(alpha, alpha).
        cutmix_alpha: 0 = off; else paste a box of the reversed batch (the last two dims: H, W of images and of
            every frame of a clip, T, F of a spectrogram), lambda ~ Beta(alpha, alpha) corrected to the box area
            (:mod:`tokenmerge.experiments.batch_mixing`).
        mixup_prob: the probability that a batch is mixed at all (by mixup or CutMix).
        mixup_switch_prob: with both mixup_alpha and cutmix_alpha > 0, the probability of CutMix for a batch.
        repeat_aug: repeated augmentation (MAE-ST ``--repeat_aug``): each drawn sample is read k times per step, so
            the dataset augments it k times independently; an epoch still draws each sample once (k x the inputs).
        weighted_sampler: draw each epoch's samples with replacement in proportion to the training dataset's
            ``sample_weights()`` (AudioMAE's weighted sampler: :mod:`tokenmerge.experiments.weighted_sampler`)
            instead of a uniform shuffle.
        epoch_samples: with weighted_sampler, the samples one epoch draws over all processes (None: the
            dataset's length).
        clip_grad: clip the total gradient norm to this (None = off).
        amp: bf16 autocast in the forward pass (meant for CUDA).
        seed: seeds shuffling, sampling, mixup, augmentation, dropout (per rank: seed + rank).
        log_every, eval_every, checkpoint_every: in steps; eval and checkpoint also run at the last step,
            0 means only there.
        out_dir: where rank 0 writes weights, training state and history (None = write nothing).
        num_workers: DataLoader worker processes per process.
        resume: continue from ``out_dir``'s training state if there is one (else start fresh).
    """

    steps: int = 1000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    layer_decay: float | None = None
    warmup_steps: int = 100
    min_lr: float = 0.0
    label_smoothing: float = 0.0
    multilabel: bool = False
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    mixup_prob: float = 1.0
    mixup_switch_prob: float = 0.5
    repeat_aug: int = 1
    weighted_sampler: bool = False
    epoch_samples: int | None = None
    clip_grad: float | None = None
    amp: bool = False
    seed: int = 0
    log_every: int = 50
    eval_every: int = 0
    checkpoint_every: int = 0
    out_dir: str | None = None
    num_workers: int = 0
    resume: bool = False

    def __post_init__(self) -> None:
        if self.out_dir is not None:
            self.out_dir = str(self.out_dir)
        problems = [
            f"{name} must be {rule}; got {getattr(self, name)!r}"
            for name, rule, ok in (
                ("steps", ">= 1", self.steps >= 1),
                ("batch_size", ">= 1", self.batch_size >= 1),
                ("lr", "> 0", self.lr > 0),
                ("min_lr", "between 0 and lr", 0 <= self.min_lr <= self.lr),
                ("weight_decay", ">= 0", self.weight_decay >= 0),
                ("layer_decay", "None or in (0, 1]", self.layer_decay is None or 0 < self.layer_decay <= 1),
                ("warmup_steps", ">= 0", self.warmup_steps >= 0),
                ("label_smoothing", "in [0, 1)", 0 <= self.label_smoothing < 1),
                ("mixup_alpha", ">= 0", self.mixup_alpha >= 0),
                ("cutmix_alpha", ">= 0", self.cutmix_alpha >= 0),
                ("mixup_prob", "in [0, 1]", 0 <= self.mixup_prob <= 1),
                ("mixup_switch_prob", "in [0, 1]", 0 <= self.mixup_switch_prob <= 1),
                ("repeat_aug", "an integer >= 1", isinstance(self.repeat_aug, int) and self.repeat_aug >= 1),
                ("epoch_samples", "None or >= 1", self.epoch_samples is None or self.epoch_samples >= 1),
                ("clip_grad", "None or > 0", self.clip_grad is None or self.clip_grad > 0),
                ("log_every", ">= 1", self.log_every >= 1),
                ("eval_every", ">= 0", self.eval_every >= 0),
                ("checkpoint_every", ">= 0", self.checkpoint_every >= 0),
                ("num_workers", ">= 0", self.num_workers >= 0),
            )
            if not ok
        ]
        if self.multilabel and self.label_smoothing:
            problems.append("label_smoothing applies to single-label cross-entropy; set it to 0 with multilabel=True")
        if self.epoch_samples is not None and not self.weighted_sampler:
            problems.append(
                "epoch_samples is the length of a weighted epoch; set weighted_sampler=True or leave it None"
            )
        if self.resume and self.out_dir is None:
            problems.append("resume=True needs out_dir (where the training state is)")
        if problems:
            raise ValueError("Invalid TrainConfig: " + "; ".join(problems) + ".")


def learning_rate(step: int, config: TrainConfig) -> float:
    """The learning rate of optimizer step ``step`` (0-based): linear warm-up reaching ``lr`` at step
    ``warmup_steps - 1`` (lr / warmup_steps at step 0), then cosine decay reaching ``min_lr`` at the last step.
    A pure function of the step, so resuming needs no scheduler state."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    peak = max(config.warmup_steps - 1, 0)
    progress = min(1.0, (step - peak) / max(1, config.steps - 1 - peak))
    return config.min_lr + (config.lr - config.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))


def decay_exempt(model: nn.Module) -> set[str]:
    """Names of the parameters AdamW does not decay: those with at most one dimension (biases, norm scales,
    LayerScale), names containing one of ``NO_DECAY_NAMES`` (position embeddings, class/distillation/register/mask
    tokens) and the names the model's own ``no_weight_decay()`` lists (timm's convention)."""
    listed = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    return {
        name
        for name, param in model.named_parameters()
        if param.ndim <= 1 or name in listed or any(key in name for key in NO_DECAY_NAMES)
    }


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW parameter groups: ``weight_decay`` on weight matrices and kernels, none on :func:`decay_exempt`'s
    names. Frozen parameters (``requires_grad=False``) are left out."""
    exempt = decay_exempt(model)
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if name in exempt else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]


def training_loss(logits: Tensor, targets: Tensor, config: TrainConfig, lam: float = 1.0) -> Tensor:
    """Mean loss of a batch whose inputs were mixed with their reverse with weight ``lam`` (1: not mixed), by
    mixup or CutMix (:func:`tokenmerge.experiments.batch_mixing.mix_batch`).

    The loss against the mixed targets ``lam * y + (1 - lam) * y.flip(0)`` (one-hot with label smoothing, or
    multi-hot) is computed as ``lam * loss(y) + (1 - lam) * loss(y.flip(0))``: both cross-entropy and BCE are
    linear in the target, so this is the same value, and class indices never need expanding to one-hot.

    Args:
        logits: [B, K].
        targets: class indices [B] (int), or multi-hot floats [B, K] with ``config.multilabel``.
    """
    logits = logits.float()
    if config.multilabel:
        loss = partial(F.binary_cross_entropy_with_logits, logits)
        targets = targets.float()
    else:
        loss = partial(F.cross_entropy, logits, label_smoothing=config.label_smoothing)
        targets = targets.long()
    if lam == 1.0:
        return loss(targets)
    return lam * loss(targets) + (1 - lam) * loss(targets.flip(0))


def check_targets(targets: Tensor, num_classes: int, multilabel: bool) -> None:
    """Raise a ``ValueError`` saying what to change if ``targets`` do not fit the loss.

    Args:
        targets: class indices [B] (int) for single-label training, multi-hot floats [B, K] for ``multilabel``.
        num_classes: K, the model's number of logits.
    """
    got = f"got {targets.dtype} targets of shape {tuple(targets.shape)}"
    if multilabel:
        if targets.ndim != 2 or targets.shape[1] != num_classes or not targets.is_floating_point():
            raise ValueError(
                f"multilabel=True needs multi-hot float targets [B, {num_classes}] (one 0/1 column per logit); "
                f"{got}. Make the dataset return a float vector per sample, or set multilabel=False for class indices."
            )
        return
    if targets.ndim != 1 or targets.is_floating_point():
        raise ValueError(
            f"Single-label training needs integer class indices [B]; {got}. For multi-hot targets [B, K] set "
            "multilabel=True."
        )
    if len(targets) and (targets.min() < 0 or targets.max() >= num_classes):
        raise ValueError(
            f"Class index {targets.min().item() if targets.min() < 0 else targets.max().item()} is outside "
            f"[0, {num_classes}) for a model with {num_classes} outputs; check num_classes and the labels."
        )


def unpack_batch(batch) -> tuple[Tensor, Tensor]:
    """A loader batch -> (inputs [B, ...], targets): a ``(inputs, targets)`` pair or a core.data ``Batch``."""
    if isinstance(batch, Batch):
        return batch.inputs, batch.targets
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    raise TypeError(
        f"A batch must be (inputs, targets) or a tokenmerge.experiments.data.Batch; got {type(batch).__name__}. "
        "Make the dataset return (input, target) pairs or pass a collate_fn that builds one of these."
    )


def optimizer_step(loss: Tensor, optimizer: torch.optim.Optimizer, config: TrainConfig) -> None:
    """Backward pass, optional gradient-norm clipping, optimizer step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if config.clip_grad is not None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, config.clip_grad)
    optimizer.step()


def measure_training_throughput(
    models: Mapping[str, nn.Module],
    make_batch: Callable[[], tuple[Tensor, Tensor]],
    *,
    config: TrainConfig | None = None,
    warmup: int = 2,
    rounds: int = 5,
    **extra,
) -> dict[str, ThroughputResult]:
    """Training samples/s (forward, backward, AdamW step) of several models in interleaved rounds; median.

    For "with vs without merging in one run": ``{"r=0": model, "r=8": tome_model}`` where ``tome_model`` is a
    patched ``copy.deepcopy(model)``. Each model runs on its own device with its own AdamW at learning rate 0
    (the same work as a real step, but the weights do not change).

    Args:
        models: name -> model on its device.
        make_batch: returns (inputs [B, ...], targets [B] or [B, K]); called once, the batch is reused.
        config: loss (``multilabel``, ``label_smoothing``), ``amp`` and ``clip_grad`` settings (default TrainConfig()).
        warmup, rounds: untimed steps per model, then timed steps per model (A, B, A, B, ...).
        **extra: recorded in each result (e.g. model name).

    Each result also records ``peak_memory_mb``: the peak CUDA memory of one more step (None off CUDA).
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1; got {rounds}.")
    config = config or TrainConfig()
    inputs, targets = make_batch()
    steps, modes = {}, {name: model.training for name, model in models.items()}
    for name, model in models.items():
        device = next(model.parameters()).device
        optimizer = torch.optim.AdamW(parameter_groups(model, 0.0), lr=0.0)
        x, y = inputs.to(device), targets.to(device)

        def step(model=model, optimizer=optimizer, x=x, y=y, device=device) -> None:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.amp):
                logits = model(x)
            optimizer_step(training_loss(logits, y, config), optimizer, config)

        steps[name] = (step, device)
        model.train()
    for _ in range(warmup):
        for step, _ in steps.values():
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, (step, device) in steps.items():
            times[name].append(_time_call(step, device))
    memory = {name: _peak_step_memory(step, device) for name, (step, device) in steps.items()}
    for name, model in models.items():
        model.train(modes[name])
    dtype = torch.bfloat16 if config.amp else torch.float32
    return {
        name: _result(
            times[name],
            inputs.shape[0],
            device,
            dtype,
            warmup,
            {"variant": name, "mode": "train", "peak_memory_mb": memory[name], **extra},
        )
        for name, (_, device) in steps.items()
    }


def _peak_step_memory(step: Callable[[], None], device: torch.device) -> float | None:
    """Peak CUDA memory (MB) allocated during one more training step (None off CUDA)."""
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    step()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) / 2**20
