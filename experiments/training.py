"""One training loop for every modality: epochs, DistributedDataParallel under torchrun, evaluation, checkpoints.

ToMe works in training as well as at inference: merging is a pooling operation that gradients pass through
(Bolya et al., ICLR 2023, Sec. 4), and the paper fine-tunes its video and audio models with merging on.
:func:`train` always calls ``model(x)``, so a model patched with ``apply_patch`` trains with its merge
schedule active, also under DistributedDataParallel (DDP calls ``module(x)``, which uses the instance-level
``forward`` the patch installs). What one step does (schedule, loss) is
:mod:`tokenmerge.experiments.training_recipe`, how a batch is mixed (mixup, CutMix)
:mod:`tokenmerge.experiments.batch_mixing`, and the weighted draw of an epoch's samples
:mod:`tokenmerge.experiments.weighted_sampler`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset
from tqdm.auto import tqdm

from .batch_mixing import mix_batch
from .checkpoint import load_state_dict_exactly, save_safetensors
from .data import Batch, SampleNote, Unreadable, collate_training, report_notes
from .distributed import (
    DistributedContext,
    broadcast_from_main,
    distributed_context,
    gather_objects,
    shard_indices,
    sum_across_ranks,
)
from .layer_decay import layer_decay_groups
from .metrics import classification_metrics, multilabel_metrics
from .training_recipe import (
    TrainConfig,
    check_targets,
    learning_rate,
    measure_training_throughput,
    optimizer_step,
    parameter_groups,
    training_loss,
    unpack_batch,
)
from .weighted_sampler import WeightedEpochSampler, check_sample_weights

log = logging.getLogger(__name__)

WEIGHTS_FILE, STATE_FILE, HISTORY_FILE = "model.safetensors", "train_state.pt", "history.json"
#: Settings that shape the optimizer's parameter groups and their per-group rates (which the saved optimizer state
#: carries): a resumed run must keep them.
GROUPING_SETTINGS = ("layer_decay", "weight_decay")
__all__ = ["TrainConfig", "TrainResult", "measure_training_throughput", "train"]


@dataclass
class TrainResult:
    """What :func:`train` returns (the same on every rank, except ``paths``).

    Attributes:
        metrics: the last history entry (step, loss, lr, samples_per_s and the final evaluation).
        history: one dict per log, eval or checkpoint step: step, loss (mean over the steps since the previous
            entry and over all processes), lr (the scheduled rate of the last step; with ``layer_decay`` the
            head's, every other layer's is lr x its ``lr_scale``), samples_per_s (model inputs, all processes,
            training time only: evaluation and checkpointing excluded; with ``repeat_aug`` k, k per drawn
            sample), and evaluation metrics at evaluation steps.
        paths: files written on rank 0: "weights", "state", "history" (empty elsewhere or without out_dir).
        skipped: the unreadable files training and validation met (every process's, each once), skipped as
            evaluation skips them; logged once at the end.
        notes: the notes the datasets attached to samples training and validation read (every process's, each
            file and kind once; e.g. videos shorter than one clip), as evaluation counts them; logged once at the end.
    """

    metrics: dict[str, float]
    history: list[dict[str, float]]
    paths: dict[str, Path] = field(default_factory=dict)
    skipped: list[Unreadable] = field(default_factory=list)
    notes: list[SampleNote] = field(default_factory=list)

    def write_summary(self, summary: dict, out_dir: str | Path) -> Path | None:
        """On the rank that wrote the weights, write ``summary`` as ``out_dir/train_results.json`` and print what
        was written; elsewhere (other ranks, no out_dir) do nothing and return None."""
        if not self.paths:
            return None
        path = Path(out_dir) / "train_results.json"
        path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
        print(f"final: {self.metrics}\nwrote {path} and {', '.join(str(p) for p in self.paths.values())}")
        return path


def _atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """``write(tmp)`` then rename onto ``path``: an interrupt leaves the previous file intact, never half a file."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _seed(*parts: int) -> int:
    """One 63-bit seed from several integers (seed, epoch, rank)."""
    value = 0
    for part in parts:
        value = (value * 1_000_003 + part) % (1 << 63)
    return value


class _Run:
    """The state of one :func:`train` call on one process."""

    def __init__(self, model, train_dataset, config, ctx, val_dataset, evaluate, collate_fn, num_classes, progress):
        self.model, self.config, self.ctx = model.to(ctx.device), config, ctx
        self.train_dataset, self.val_dataset, self.evaluate_fn = train_dataset, val_dataset, evaluate
        self.collate_fn, self.num_classes, self.progress = collate_fn or collate_training, num_classes, progress
        self.skipped: dict[str, str] = {}  # unreadable files met so far: path -> reason
        self.notes: dict[tuple[str, str], SampleNote] = {}  # noted samples met so far: (path, kind) -> note
        self.out_dir = Path(config.out_dir) if config.out_dir is not None and ctx.is_main else None
        self.sampler = training_sampler(train_dataset, config, ctx)
        self.steps_per_epoch = len(self.sampler) // config.batch_size
        if config.layer_decay in (None, 1.0):
            groups = parameter_groups(model, config.weight_decay)
        else:
            groups = layer_decay_groups(model, config.lr, config.weight_decay, config.layer_decay)
        self.optimizer = torch.optim.AdamW(groups, lr=config.lr)
        self.history: list[dict[str, float]] = []
        self.step = self._resume() if config.resume else 0
        if self.step == 0:
            torch.manual_seed(config.seed + ctx.rank)
        self.net = model
        if ctx.distributed:
            self.net = DistributedDataParallel(model, [ctx.device] if ctx.device.type == "cuda" else None)

    def batches(self) -> Iterator:
        """Training batches from ``self.step`` on: epoch after epoch (``sampler.set_epoch``), resuming mid-epoch.

        A step reads ``batch_size`` drawn indices, each ``repeat_aug`` times in a row (batch [i, i, j, j, ...]
        for k = 2), so a dataset that augments at random gives k differently augmented copies of each sample.
        """
        size, repeats = self.config.batch_size, self.config.repeat_aug
        epoch, skip = divmod(self.step, self.steps_per_epoch)
        while True:
            self.sampler.set_epoch(epoch)
            indices = list(self.sampler)[: self.steps_per_epoch * size]
            steps = [indices[start : start + size] for start in range(skip * size, len(indices), size)]
            loader = DataLoader(
                self.train_dataset,
                batch_sampler=[[i for i in step for _ in range(repeats)] for step in steps],
                num_workers=self.config.num_workers,
                collate_fn=self.collate_fn,
                pin_memory=self.ctx.device.type == "cuda",
                generator=torch.Generator().manual_seed(_seed(self.config.seed, epoch, self.ctx.rank)),
            )
            yield from loader
            epoch, skip = epoch + 1, 0

    def train_step(self, batch) -> tuple[Tensor, int]:
        """One optimizer step on a batch; returns (the loss, detached, scalar on the device; samples in the batch)."""
        config, device = self.config, self.ctx.device
        inputs, targets = unpack_batch(self._note_skipped(batch))
        if inputs.shape[0] == 0:
            raise ValueError(
                f"A training batch has no readable samples (unreadable: {', '.join(sorted(self.skipped))}); remove or "
                "repair the unreadable files."
            )
        lr = learning_rate(self.step, config)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        x, lam = mix_batch(inputs.to(device, non_blocking=True), config)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.amp):
            logits = self.net(x)
        classes = logits.shape[-1]
        if self.num_classes is not None and classes != self.num_classes:
            raise ValueError(f"The model outputs {classes} logits but num_classes={self.num_classes}.")
        check_targets(targets, classes, config.multilabel)
        loss = training_loss(logits, targets.to(device, non_blocking=True), config, lam)
        optimizer_step(loss, self.optimizer, config)
        return loss.detach(), inputs.shape[0]

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Validation metrics (every rank, exact over shards) and the ``evaluate`` callback's (rank 0, broadcast).

        Runs in eval mode and inside ``torch.random.fork_rng``, so evaluating never changes the training run.
        """
        devices = [self.ctx.device] if self.ctx.device.type == "cuda" else []
        metrics: dict[str, float] = {}
        self.model.eval()
        with torch.random.fork_rng(devices=devices):
            if self.val_dataset is not None:
                metrics.update(self.validate())
            if self.evaluate_fn is not None:
                metrics.update(
                    broadcast_from_main(self.evaluate_fn(self.model) if self.ctx.is_main else None, self.ctx)
                )
        self.model.train()
        return metrics

    def validate(self) -> dict[str, float]:
        """val_loss (without label smoothing) and val_top1, val_top5 (single-label) or val_mAP (multilabel) over
        the whole ``val_dataset``: each rank predicts its shard, the predictions are gathered, metrics are exact."""
        shard = Subset(self.val_dataset, shard_indices(len(self.val_dataset), self.ctx))
        workers, collate = self.config.num_workers, self.collate_fn
        loader = DataLoader(shard, self.config.batch_size, num_workers=workers, collate_fn=collate)
        logits, targets = [], []
        for batch in loader:
            inputs, labels = unpack_batch(self._note_skipped(batch))
            if len(inputs):
                with torch.autocast(self.ctx.device.type, dtype=torch.bfloat16, enabled=self.config.amp):
                    logits.append(self.model(inputs.to(self.ctx.device)).float().cpu())
                targets.append(labels)
        logits = [t for part in gather_objects(logits, self.ctx) for t in part]
        targets = [t for part in gather_objects(targets, self.ctx) for t in part]
        if not logits:
            raise ValueError("val_dataset has no readable samples; pass a non-empty validation set or none.")
        logits, targets = torch.cat(logits), torch.cat(targets)
        check_targets(targets, logits.shape[-1], self.config.multilabel)
        if self.config.multilabel:
            loss = F.binary_cross_entropy_with_logits(logits, targets.float()).item()
            return {"val_loss": loss, **{f"val_{k}": v for k, v in multilabel_metrics(logits, targets).items()}}
        loss = F.cross_entropy(logits, targets.long()).item()
        return {"val_loss": loss, **{f"val_{k}": v for k, v in classification_metrics(logits, targets).items()}}

    def _note_skipped(self, batch):
        """``batch``, after recording the unreadable files and the sample notes it lists (a :class:`Batch`'s
        ``skipped`` and ``notes``)."""
        if isinstance(batch, Batch):
            for bad in batch.skipped:
                self.skipped.setdefault(bad.path, bad.error)
            for note in batch.notes:
                self.notes.setdefault((note.path, note.note), note)
        return batch

    def report_notes(self) -> list[SampleNote]:
        """Every process's sample notes, each file and kind once (call on all ranks); rank 0 logs one warning per
        kind of note for them (:func:`~tokenmerge.experiments.data.report_notes`)."""
        merged: dict[tuple[str, str], SampleNote] = {}
        for part in gather_objects(self.notes, self.ctx):
            for key, note in part.items():
                merged.setdefault(key, note)
        notes = [merged[key] for key in sorted(merged)]
        if notes and self.ctx.is_main:
            report_notes(notes, listed_in="train_results.json", where=" in training")
        return notes

    def report_skipped(self) -> list[Unreadable]:
        """Every process's unreadable files, each once (call on all ranks); rank 0 logs one warning for them."""
        merged: dict[str, str] = {}
        for part in gather_objects(self.skipped, self.ctx):
            for path, error in part.items():
                merged.setdefault(path, error)
        skipped = [Unreadable(path, error) for path, error in sorted(merged.items())]
        if skipped and self.ctx.is_main:
            shown = "; ".join(f"{s.path} ({s.error})" for s in skipped[:5])
            more = f"; and {len(skipped) - 5} more" if len(skipped) > 5 else ""
            log.warning(
                "%d unreadable file%s skipped in training (listed in train_results.json): %s%s",
                len(skipped),
                "s" if len(skipped) != 1 else "",
                shown,
                more,
            )
        return skipped

    def state(self) -> dict:
        """The resumable training state (gathers every rank's RNG state; call on all ranks)."""
        rng = {"cpu": torch.get_rng_state()}
        if self.ctx.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.ctx.device)
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": gather_objects(rng, self.ctx),
            "world_size": self.ctx.world_size,
            "config": asdict(self.config),
            "history": self.history,
        }

    def save(self) -> dict[str, Path]:
        """Write the training state and the float32 weights (rank 0); every rank must call it."""
        state = self.state()
        if self.out_dir is None:
            return {}
        self.out_dir.mkdir(parents=True, exist_ok=True)
        meta = {"step": self.step, "config": asdict(self.config)}
        return {
            "state": _atomic_write(self.out_dir / STATE_FILE, lambda tmp: torch.save(state, tmp)),
            "weights": _atomic_write(
                self.out_dir / WEIGHTS_FILE, lambda tmp: save_safetensors(self.model, tmp, torch.float32, **meta)
            ),
            "history": _atomic_write(
                self.out_dir / HISTORY_FILE, lambda tmp: tmp.write_text(json.dumps(self.history, indent=1) + "\n")
            ),
        }

    def _resume(self) -> int:
        """Load ``out_dir``'s training state if there is one; returns the step to continue from (0: none)."""
        path = Path(self.config.out_dir) / STATE_FILE
        if not path.is_file():
            log.info("resume: no training state at %s; starting from step 0", path)
            return 0
        state = torch.load(path, map_location="cpu", weights_only=True)
        changed = {k: v for k, v in state["config"].items() if k != "resume" and getattr(self.config, k) != v}
        grouping = {k: v for k, v in changed.items() if k in GROUPING_SETTINGS}
        if grouping:
            now = ", ".join(f"train.{k}={getattr(self.config, k)!r}" for k in grouping)
            saved = ", ".join(f"train.{k}={v!r}" for k, v in grouping.items())
            raise ValueError(
                f"The training state at {path} was saved with {saved}; this run asks for {now}, and the saved "
                "optimizer state holds the parameter groups and per-group rates of the saved values, so it cannot "
                "continue with others. Resume with the saved values, or train into a new out_dir."
            )
        if changed:
            log.warning("resuming %s with changed settings (saved values: %s)", path, changed)
        load_state_dict_exactly(self.model, state["model"], source=f"training state {path}")
        self.optimizer.load_state_dict(state["optimizer"])
        self.history = state["history"]
        if state["world_size"] == self.ctx.world_size:
            rng = state["rng"][self.ctx.rank]
            torch.set_rng_state(rng["cpu"])
            if "cuda" in rng and self.ctx.device.type == "cuda":
                torch.cuda.set_rng_state(rng["cuda"], self.ctx.device)
        else:
            log.warning(
                "resuming with %d processes instead of %d: data order and RNG streams differ from an uninterrupted run",
                self.ctx.world_size,
                state["world_size"],
            )
            torch.manual_seed(_seed(self.config.seed, state["step"], self.ctx.rank))
        return state["step"]

    def run(self) -> TrainResult:
        """Train from ``self.step`` to ``config.steps``; evaluate, log and checkpoint on schedule."""
        config, ctx = self.config, self.ctx
        paths: dict[str, Path] = {}
        interactive = sys.stderr.isatty()
        show = self.progress and ctx.is_main
        bar = tqdm(
            total=config.steps,
            initial=self.step,
            desc="train",
            disable=not show,
            mininterval=0.5 if interactive else 30,
        )
        window_loss, window_steps, window_samples = torch.zeros((), device=ctx.device), 0, 0
        self.model.train()
        batches = self.batches()
        start = time.perf_counter()
        with bar:
            while self.step < config.steps:
                loss, batch_samples = self.train_step(next(batches))
                self.step += 1
                window_loss, window_steps = window_loss + loss, window_steps + 1
                window_samples += batch_samples
                bar.update()
                last = self.step == config.steps
                due_eval = (self.val_dataset is not None or self.evaluate_fn is not None) and (
                    last or (config.eval_every and self.step % config.eval_every == 0)
                )
                due_save = last or (config.checkpoint_every and self.step % config.checkpoint_every == 0)
                if not (due_eval or due_save or self.step % config.log_every == 0):
                    continue
                if ctx.device.type == "cuda":
                    torch.cuda.synchronize(ctx.device)  # count the window's queued GPU work in its time
                seconds = time.perf_counter() - start
                window = torch.stack([window_loss / window_steps, *window_loss.new_tensor([window_samples, seconds])])
                loss_sum, samples, seconds_sum = sum_across_ranks(window, ctx).tolist()
                entry = {
                    "step": self.step,
                    "loss": loss_sum / ctx.world_size,
                    "lr": learning_rate(self.step - 1, config),
                    "samples_per_s": samples / (seconds_sum / ctx.world_size),
                }
                entry.update(self.evaluate() if due_eval else {})
                self.history.append(entry)
                bar.set_postfix(loss=f"{entry['loss']:.4f}", refresh=False)
                if show:
                    bar.write(
                        " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in entry.items())
                    )
                if due_save:
                    paths = self.save()
                window_loss, window_steps, window_samples = torch.zeros((), device=ctx.device), 0, 0
                start = time.perf_counter()
        self.model.eval()
        skipped, notes = self.report_skipped(), self.report_notes()
        return TrainResult(dict(self.history[-1]) if self.history else {}, self.history, paths, skipped, notes)


def training_sampler(
    dataset: Dataset, config: TrainConfig, ctx: DistributedContext
) -> DistributedSampler | WeightedEpochSampler:
    """This process's sampler of training indices: a shuffle of its share of the dataset (``DistributedSampler``,
    seeded, drop_last), or with ``config.weighted_sampler`` its share of a weighted draw of ``epoch_samples``
    indices (:class:`~tokenmerge.experiments.weighted_sampler.WeightedEpochSampler`) with the dataset's
    ``sample_weights()`` ([N], one per sample)."""
    if not config.weighted_sampler:
        return DistributedSampler(dataset, ctx.world_size, ctx.rank, shuffle=True, seed=config.seed, drop_last=True)
    if not callable(getattr(dataset, "sample_weights", None)):
        raise TypeError(
            f"weighted_sampler=True needs a training dataset with a sample_weights() method returning one weight per "
            f"sample [N]; {type(dataset).__name__} has none. Add one (e.g. tokenmerge.experiments.weighted_sampler."
            "label_frequency_weights of its labels) or set weighted_sampler=False."
        )
    samples = config.epoch_samples or len(dataset)
    weights = check_sample_weights(dataset.sample_weights(), len(dataset))
    return WeightedEpochSampler(weights, samples, ctx.world_size, ctx.rank, config.seed)


def train(
    model: nn.Module,
    train_dataset: Dataset,
    config: TrainConfig,
    *,
    val_dataset: Dataset | None = None,
    evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
    collate_fn: Callable | None = None,
    num_classes: int | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``model`` in place with AdamW; in one process, or under torchrun with DistributedDataParallel.

    Under torchrun (RANK, WORLD_SIZE, LOCAL_RANK set) every process calls ``train`` with the same arguments:
    the process group is created (gloo on CPU, NCCL on CUDA) and destroyed at the end, the model is wrapped in
    DDP (rank 0's weights are broadcast first), each process reads a disjoint share of every epoch
    (``DistributedSampler``, or its positions of the weighted draw with ``config.weighted_sampler``), losses and
    metrics are reduced over the processes, and only rank 0 writes files. In one process no process group is
    created. The device is ``cuda:LOCAL_RANK`` if CUDA is available, else the CPU. The model is moved there,
    trained through ``model(x)`` (an ``apply_patch`` patch stays active) and returned in eval mode.

    Checkpoints (rank 0, written atomically) go to ``config.out_dir``: ``model.safetensors`` (float32 weights;
    a ToMe patch adds no parameters), ``train_state.pt`` (weights, optimizer, step, every rank's RNG state,
    config and history; read with ``torch.load(weights_only=True)``) and ``history.json``. With
    ``config.resume`` a run continues from ``train_state.pt``; with the same number of processes and a dataset
    that returns the same sample for the same index (or augments with torch's RNG in the main process:
    ``num_workers=0``), it ends exactly where an uninterrupted run would.

    Args:
        model: maps inputs [B, ...] to logits [B, K].
        train_dataset: map-style; ``dataset[i]`` is ``(input, target)`` (or anything ``collate_fn`` turns into
            an ``(inputs, targets)`` pair or a ``core.data.Batch``); target a class index, or a multi-hot float
            vector [K] with ``config.multilabel``. With ``config.weighted_sampler`` it also has
            ``sample_weights() -> [N]`` (e.g. :func:`~tokenmerge.experiments.weighted_sampler.label_frequency_weights`).
        config: hyper-parameters.
        val_dataset: evaluated on every rank (each a disjoint shard, gathered, exact): val_loss and val_top1,
            val_top5 (single-label) or val_mAP (multilabel).
        evaluate: ``evaluate(model) -> {name: value}`` called on rank 0 only with the unwrapped model in eval
            mode under ``torch.no_grad``; its result is broadcast to every rank. It and ``val_dataset`` run at
            every ``eval_every`` step and at the end, inside ``torch.random.fork_rng`` (they never change the
            training run).
        collate_fn: the DataLoader's (default: stacking, and unreadable files, items that are
            :class:`~tokenmerge.experiments.data.Unreadable`, skipped and listed in the result's ``skipped``, and the
            notes of :class:`~tokenmerge.experiments.data.Noted` items listed in its ``notes``:
            :func:`~tokenmerge.experiments.data.collate_training`).
        num_classes: K, if given checked against the model's output.
        progress: a tqdm bar and one line per history entry on rank 0.

    Raises:
        ValueError: an epoch holds fewer samples than one global batch, targets do not fit the loss, ...
        TypeError: ``config.weighted_sampler`` with a dataset that has no ``sample_weights()``.
    """
    if not hasattr(train_dataset, "__len__"):
        raise TypeError("train needs a map-style dataset (with __len__ and __getitem__), not an iterable dataset.")
    with distributed_context() as ctx:
        global_batch = config.batch_size * ctx.world_size
        epoch = config.epoch_samples or len(train_dataset)
        if epoch < global_batch:
            what = f"epoch_samples={epoch} is" if config.epoch_samples else f"The training set has {epoch} samples,"
            raise ValueError(
                f"{what} fewer than one global batch (batch_size {config.batch_size} x {ctx.world_size} processes = "
                f"{global_batch}); lower batch_size or use more data."
            )
        run = _Run(model, train_dataset, config, ctx, val_dataset, evaluate, collate_fn, num_classes, progress)
        return run.run()
