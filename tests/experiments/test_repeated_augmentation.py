"""Repeated augmentation (train.repeat_aug): each drawn sample is read k times per step, each read augmented anew;
epochs still draw every sample once; the lr rule counts the copies (MAE-ST's effective batch)."""

import pytest
import torch

from tokenmerge.experiments import TrainConfig, train
from tokenmerge.experiments.training_job import train_config

from .training_helpers import CLASSES, tiny_vit

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/experiments/conftest.py


class Augmented(torch.utils.data.Dataset):
    """Image i [3, 32, 32]: the constant i plus fresh noise in [0, 0.5) on every read (an augmentation drawn from
    torch's RNG); label i % 3. ``seen`` lists the indices read, in order."""

    def __init__(self, size: int):
        self.size, self.seen = size, []

    def __len__(self):
        return self.size

    def __getitem__(self, i):
        self.seen.append(i)
        return torch.full((3, 32, 32), float(i)) + 0.5 * torch.rand(()), i % CLASSES


def test_each_step_reads_every_drawn_sample_k_times_with_its_own_augmentation():
    torch.manual_seed(0)
    model, data, inputs = tiny_vit(), Augmented(12), []
    model.register_forward_pre_hook(lambda module, args: inputs.append(args[0].clone()))
    config = TrainConfig(steps=6, batch_size=4, repeat_aug=3, warmup_steps=1, log_every=3)
    result = train(model, data, config, progress=False)
    assert [x.shape[0] for x in inputs] == [12] * 6  # 4 samples x 3 copies per step
    steps = [data.seen[12 * s : 12 * s + 12] for s in range(6)]
    for step, x in zip(steps, inputs, strict=True):
        drawn = step[::3]
        assert step == [i for i in drawn for _ in range(3)]  # each drawn index three times in a row
        assert x[:, 0, 0, 0].floor().long().tolist() == step  # the model saw exactly those reads
        copies = x[:, 0, 0, 0].view(4, 3)
        assert all(len(set(row.tolist())) == 3 for row in copies)  # three different augmentations
    for epoch in (0, 1):  # an epoch is 12 / 4 = 3 steps and draws every sample once
        drawn = [i for step in steps[3 * epoch : 3 * epoch + 3] for i in step[::3]]
        assert sorted(drawn) == list(range(12))
    assert result.history[-1]["samples_per_s"] > 0


def run(out_dir, interrupt: bool = False, resume: bool = False):
    """6 steps of 4 samples x 2 copies with CutMix/mixup; checkpoint every 2 steps; ``interrupt``: stop at the
    evaluation of step 3 (the checkpoint of step 2 is the last one)."""
    torch.manual_seed(0)
    model = tiny_vit()
    config = TrainConfig(
        steps=6, batch_size=4, repeat_aug=2, cutmix_alpha=1.0, mixup_alpha=0.8, warmup_steps=1, log_every=3,
        eval_every=3, checkpoint_every=2, out_dir=str(out_dir), resume=resume,
    )  # fmt: skip

    def evaluate(trained):
        if interrupt:
            raise KeyboardInterrupt
        return {}

    train(model, Augmented(12), config, evaluate=evaluate, progress=False)
    return model


def test_repeat_aug_resumes_where_the_uninterrupted_run_would(tmp_path):
    whole = run(tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "parts", interrupt=True)
    assert torch.load(tmp_path / "parts" / "train_state.pt", weights_only=True)["step"] == 2
    resumed = run(tmp_path / "parts", resume=True)
    torch.testing.assert_close(resumed.state_dict(), whole.state_dict(), rtol=0, atol=0)


def test_the_lr_rule_counts_the_copies(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "8")
    config = train_config({"blr": 0.0024, "batch_size": 2, "repeat_aug": 2})
    assert config.lr == pytest.approx(0.0024 * 2 * 8 * 2 / 256)  # MAE-ST main_finetune.py:457-462
    assert train_config({"blr": 0.0024, "batch_size": 2}).lr == pytest.approx(0.0024 * 2 * 8 / 256)
    for bad in (0, 1.5):
        with pytest.raises(ValueError, match="repeat_aug must be an integer >= 1"):
            TrainConfig(repeat_aug=bad)
