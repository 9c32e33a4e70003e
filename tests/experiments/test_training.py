"""The shared training loop: ToMe active in training, the recipe, exact resume, clear errors, DDP under torchrun."""

import copy
import json
import math
import os
import subprocess
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F

from tests.torchrun import torchrun
from tokenmerge.experiments import TrainConfig, measure_training_throughput, train
from tokenmerge.experiments.batch_mixing import mixup
from tokenmerge.experiments.checkpoint import read_safetensors_metadata, read_state_dict
from tokenmerge.experiments.data import collate_skipping
from tokenmerge.experiments.distributed import distributed_context
from tokenmerge.experiments.training import _atomic_write
from tokenmerge.experiments.training_recipe import learning_rate, parameter_groups, training_loss
from tokenmerge.image import apply_patch

from .training_helpers import CLASSES, SeparableImages, record_tokens_entering, tiny_vit

HELPER = Path(__file__).with_name("training_helpers.py")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/experiments/conftest.py


def patched_vit(seed: int = 0, r: int = 2, drop_path_rate: float = 0.0):
    torch.manual_seed(seed)
    model = tiny_vit(drop_path_rate)
    return model, apply_patch(model, r=r)


def test_patched_vit_trains_with_merging_and_loss_decreases():
    model, handle = patched_vit()
    tokens = record_tokens_entering(model.blocks[1])
    in_group = []
    config = TrainConfig(steps=30, batch_size=16, lr=3e-3, warmup_steps=3, log_every=5, eval_every=15)

    def evaluate(trained):
        in_group.append(dist.is_initialized())
        return {}

    result = train(model, SeparableImages(96), config, val_dataset=SeparableImages(30, seed=1), evaluate=evaluate)
    assert set(tokens) == {15}  # 17 tokens, r=2 in block 0: merging was active in training and evaluation
    losses = [entry["loss"] for entry in result.history]
    assert [entry["step"] for entry in result.history] == [5, 10, 15, 20, 25, 30]
    assert losses[-1] < 0.6 * losses[0]
    assert result.metrics["val_top1"] >= 0.9 and result.metrics["val_loss"] < 0.5
    assert all(entry["samples_per_s"] > 0 for entry in result.history)
    assert in_group == [False, False]  # one process: no process group
    assert result.paths == {} and handle.active and not model.training


def run_to_completion_or_interrupt(out_dir, seed: int, resume: bool = False, interrupt_at: int | None = None):
    """8 steps of 8 samples over a 24-sample set (epochs of 3 steps): mixup, label smoothing, drop path,
    clipping, weight decay; eval every 2 steps, checkpoint every 4. ``interrupt_at``: raise from the
    evaluation callback at that step (after the checkpoint at step 4)."""
    model, _ = patched_vit(seed, drop_path_rate=0.1)
    config = TrainConfig(
        steps=8, batch_size=8, lr=3e-3, weight_decay=0.05, warmup_steps=2, min_lr=1e-4, label_smoothing=0.1,
        mixup_alpha=0.4, clip_grad=0.5, log_every=2, eval_every=2, checkpoint_every=4, out_dir=str(out_dir),
        resume=resume,
    )  # fmt: skip
    evaluations = []

    def evaluate(trained):
        evaluations.append(1)
        torch.rand(3)  # evaluation may draw random numbers without changing the training run
        if len(evaluations) * 2 == interrupt_at:
            raise KeyboardInterrupt
        return {"eval_calls": float(len(evaluations))}

    result = train(model, SeparableImages(24), config, val_dataset=SeparableImages(6, 1), evaluate=evaluate)
    return model, result


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    whole, whole_result = run_to_completion_or_interrupt(tmp_path / "whole", seed=0)
    with pytest.raises(KeyboardInterrupt):
        run_to_completion_or_interrupt(tmp_path / "parts", seed=0, interrupt_at=6)
    assert torch.load(tmp_path / "parts" / "train_state.pt", weights_only=True)["step"] == 4
    resumed, resumed_result = run_to_completion_or_interrupt(tmp_path / "parts", seed=123, resume=True)
    torch.testing.assert_close(resumed.state_dict(), whole.state_dict(), rtol=0, atol=0)

    def trajectory(result):
        return [[entry[k] for k in ("step", "loss", "lr", "val_loss", "val_top1")] for entry in result.history]

    assert trajectory(resumed_result) == trajectory(whole_result)
    state = torch.load(tmp_path / "parts" / "train_state.pt", weights_only=True)
    assert state["step"] == 8 and state["world_size"] == 1 and state["config"]["mixup_alpha"] == 0.4
    saved = read_state_dict(tmp_path / "parts" / "model.safetensors")
    torch.testing.assert_close(saved, resumed.state_dict(), rtol=0, atol=0)  # float32 weights, no patch keys
    assert read_safetensors_metadata(tmp_path / "parts" / "model.safetensors")["step"] == 8
    history = json.loads((tmp_path / "parts" / "history.json").read_text())
    assert [e["step"] for e in history] == [2, 4, 6, 8] and not list((tmp_path / "parts").glob("*.tmp"))


def test_evaluation_does_not_change_the_training_run():
    config = TrainConfig(steps=4, batch_size=8, mixup_alpha=0.4, warmup_steps=1, eval_every=1)
    plain, _ = patched_vit(drop_path_rate=0.1)
    train(plain, SeparableImages(16), config, progress=False)
    evaluated, _ = patched_vit(drop_path_rate=0.1)
    train(evaluated, SeparableImages(16), config, evaluate=lambda m: {"noise": torch.rand(1).item()}, progress=False)
    torch.testing.assert_close(evaluated.state_dict(), plain.state_dict(), rtol=0, atol=0)


def test_an_interrupted_write_leaves_the_previous_file(tmp_path):
    path = tmp_path / "train_state.pt"
    _atomic_write(path, lambda tmp: torch.save({"step": 4}, tmp))

    def interrupted(tmp):
        tmp.write_bytes(b"half a checkp")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _atomic_write(path, interrupted)
    assert torch.load(path, weights_only=True) == {"step": 4} and [p.name for p in tmp_path.iterdir()] == [path.name]


def test_multilabel_training_with_mixup_and_skipping_collate():
    model, _ = patched_vit()
    config = TrainConfig(steps=6, batch_size=8, multilabel=True, mixup_alpha=0.5, warmup_steps=1, log_every=3)
    data, val = SeparableImages(24, multilabel=True), SeparableImages(9, 1, multilabel=True)
    result = train(model, data, config, val_dataset=val, collate_fn=collate_skipping, num_classes=CLASSES)
    assert math.isfinite(result.metrics["loss"]) and 0 < result.metrics["val_mAP"] <= 1


def test_parameter_groups_exempt_biases_norms_position_embeddings_and_tokens():
    model = tiny_vit()
    model.head.bias.requires_grad_(False)
    names = {id(p): n for n, p in model.named_parameters()}
    decay, no_decay = parameter_groups(model, 0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    decayed, exempt = {names[id(p)] for p in decay["params"]}, {names[id(p)] for p in no_decay["params"]}
    assert decayed == {n for n, p in model.named_parameters() if n.endswith("weight") and p.ndim > 1}
    assert {"pos_embed", "cls_token", "norm.weight", "blocks.0.norm1.weight", "blocks.1.mlp.fc1.bias"} <= exempt
    assert "head.bias" not in decayed | exempt


def test_learning_rate_warms_up_linearly_then_decays_to_min_lr():
    config = TrainConfig(steps=10, lr=1.0, min_lr=0.1, warmup_steps=4)
    rates = [learning_rate(step, config) for step in range(10)]
    assert rates[:4] == [0.25, 0.5, 0.75, 1.0]
    assert all(a > b for a, b in zip(rates[3:], rates[4:])) and rates[-1] == pytest.approx(0.1)
    assert rates[4] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 6)))
    assert learning_rate(0, TrainConfig(steps=5, lr=2.0, warmup_steps=0)) == 2.0


def test_mixup_loss_equals_the_loss_on_mixed_one_hot_and_multi_hot_targets():
    torch.manual_seed(0)
    logits, labels, lam = torch.randn(6, 4), torch.tensor([0, 3, 1, 1, 2, 0]), 0.3
    smoothed = F.one_hot(labels, 4).float() * 0.9 + 0.1 / 4  # timm's mixup_target: smoothing, then mixing
    mixed = lam * smoothed + (1 - lam) * smoothed.flip(0)
    expected = -(mixed * logits.log_softmax(-1)).sum(-1).mean()
    torch.testing.assert_close(training_loss(logits, labels, TrainConfig(label_smoothing=0.1), lam), expected)
    multi_hot = (torch.rand(6, 4) > 0.5).float()
    expected = F.binary_cross_entropy_with_logits(logits, lam * multi_hot + (1 - lam) * multi_hot.flip(0))
    torch.testing.assert_close(training_loss(logits, multi_hot, TrainConfig(multilabel=True), lam), expected)
    x = torch.arange(3.0)
    torch.testing.assert_close(mixup(x, 0.25), torch.tensor([1.5, 1.0, 0.5]))


@pytest.mark.parametrize(
    "data, settings, message",
    [
        (SeparableImages(10), {"batch_size": 16}, "fewer than one global batch"),
        (SeparableImages(16), {"multilabel": True}, r"multilabel=True needs multi-hot float targets \[B, 3\]"),
        (SeparableImages(16, multilabel=True), {}, "For multi-hot targets .* set multilabel=True"),
    ],
)
def test_bad_data_gets_one_clear_error(data, settings, message):
    model, _ = patched_vit()
    with pytest.raises(ValueError, match=message):
        train(model, data, TrainConfig(**{"steps": 2, "batch_size": 8, **settings}), progress=False)


def test_bad_settings_get_clear_errors(monkeypatch):
    with pytest.raises(ValueError, match="steps must be >= 1.*label_smoothing applies to single-label"):
        TrainConfig(steps=0, multilabel=True, label_smoothing=0.1)
    with pytest.raises(ValueError, match="resume=True needs out_dir"):
        TrainConfig(resume=True)
    model, _ = patched_vit()
    with pytest.raises(ValueError, match="outputs 3 logits but num_classes=5"):
        train(model, SeparableImages(16), TrainConfig(steps=1, batch_size=8), num_classes=5, progress=False)
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ValueError, match="start distributed runs with torchrun"):
        with distributed_context():
            pass


def test_measure_training_throughput_compares_models_without_changing_them():
    model, _ = patched_vit(r=0)
    merged = copy.deepcopy(model)
    apply_patch(merged, r=4)
    before = copy.deepcopy(model.state_dict())
    make_batch = lambda: (torch.randn(8, 3, 32, 32), torch.randint(0, CLASSES, (8,)))  # noqa: E731
    results = measure_training_throughput({"r=0": model, "r=4": merged}, make_batch, warmup=1, rounds=3, model="tiny")
    assert set(results) == {"r=0", "r=4"} and all(r.samples_per_s > 0 and r.repeats == 3 for r in results.values())
    assert results["r=4"].to_dict()["variant"] == "r=4" and results["r=0"].to_dict()["model"] == "tiny"
    torch.testing.assert_close(model.state_dict(), before, rtol=0, atol=0)


@pytest.mark.slow
def test_two_processes_under_torchrun_train_one_model(tmp_path):
    command = torchrun(str(HELPER), str(tmp_path))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["world_size"] == 2 for r in ranks)
    seen = [set(r["seen"]) for r in ranks]
    assert len(ranks[0]["seen"]) == len(ranks[1]["seen"]) == 16  # 4 steps x batch 4, one epoch of 32
    assert not seen[0] & seen[1] and seen[0] | seen[1] == set(range(32))
    assert all(r["tokens_last_block"] == [15] for r in ranks)  # merging active inside DDP
    assert ranks[0]["history"] == ranks[1]["history"] and math.isfinite(ranks[0]["metrics"]["loss"])
    assert "val_top1" in ranks[1]["metrics"] and "weight_sum" in ranks[1]["metrics"]
    assert ranks[0]["evaluated_on"] == [0] and ranks[1]["evaluated_on"] == []
    assert set(ranks[0]["paths"]) == {"weights", "state", "history"} and ranks[1]["paths"] == {}
    assert not any(r["group_left_open"] for r in ranks)
    weights = [torch.load(tmp_path / f"weights_rank{r}.pt", weights_only=True) for r in (0, 1)]
    torch.testing.assert_close(weights[0], weights[1], rtol=0, atol=0)
    torch.testing.assert_close(read_state_dict(tmp_path / "model.safetensors"), weights[0], rtol=0, atol=0)
    state = torch.load(tmp_path / "train_state.pt", weights_only=True)
    assert state["step"] == 4 and state["world_size"] == 2 and len(state["rng"]) == 2


def test_resume_with_another_layer_decay_is_one_clear_error(tmp_path):
    def run(layer_decay, resume):
        model, _ = patched_vit()
        config = TrainConfig(
            steps=2, batch_size=8, lr=1e-3, warmup_steps=1, layer_decay=layer_decay, checkpoint_every=1,
            out_dir=str(tmp_path), resume=resume,
        )  # fmt: skip
        return train(model, SeparableImages(16), config, progress=False)

    run(0.75, resume=False)
    with pytest.raises(
        ValueError, match=r"saved with train.layer_decay=0.75; this run asks for train.layer_decay=0.65"
    ):
        run(0.65, resume=True)
    run(0.75, resume=True)  # the saved value continues
