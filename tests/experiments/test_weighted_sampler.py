"""AudioMAE's weighted sampler (experiments/weighted_sampler.py): label-frequency weights, draws that follow them,
distinct per-rank shares of one seeded draw, and the trainer drawing its epochs with it."""

import pytest
import torch

from tokenmerge.audio.data import AudioDataset
from tokenmerge.experiments import TrainConfig, train
from tokenmerge.experiments.data_index import DataIndex
from tokenmerge.experiments.weighted_sampler import WeightedEpochSampler, label_frequency_weights

from .training_helpers import SeparableImages, tiny_vit

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/experiments/conftest.py


def test_label_frequency_weights_are_audiomae_s():
    # counts: class 0 twice, class 1 three times, class 2 once, class 3 never
    weights = label_frequency_weights([(0, 1), (1,), 2, (0, 1)], num_classes=4)
    w = [1000 / (count + 0.01) for count in (2, 3, 1)]
    expected = torch.tensor([w[0] + w[1], w[1], w[2], w[0] + w[1]], dtype=torch.float64)
    torch.testing.assert_close(weights, expected, rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match=r"outside \[0, 3\)"):
        label_frequency_weights([0, 3], num_classes=3)


def test_the_audio_dataset_weighs_its_index_by_label_frequency():
    index = DataIndex([("a.wav", (0,)), ("b.wav", (0, 1)), ("c.wav", (0,))], ["x", "y"], multi_label=True)
    common, rare = 1000 / 3.01, 1000 / 1.01  # class 0 in three samples, class 1 in one
    expected = torch.tensor([common, common + rare, common], dtype=torch.float64)
    torch.testing.assert_close(AudioDataset(index, train=True).sample_weights(), expected, rtol=1e-12, atol=0)


def test_draws_follow_the_weights():
    weights = torch.tensor([1.0, 2.0, 3.0, 4.0, 0.0])
    sampler = WeightedEpochSampler(weights, 20000, world_size=1, rank=0, seed=0)
    counts = torch.bincount(torch.tensor(list(sampler)), minlength=5).double()
    expected = 20000 * weights[:4].double() / weights.sum()
    chi2 = ((counts[:4] - expected) ** 2 / expected).sum().item()
    assert chi2 < 16.27  # chi-square, 3 degrees of freedom, p = 0.001
    assert counts[4] == 0  # a zero weight is never drawn
    assert len(sampler) == 20000


def test_each_rank_takes_its_positions_of_one_seeded_draw():
    weights = torch.rand(50, generator=torch.Generator().manual_seed(0)) + 0.1
    whole = WeightedEpochSampler(weights, 40, world_size=1, rank=0, seed=7)
    shares = [WeightedEpochSampler(weights, 40, world_size=2, rank=rank, seed=7) for rank in (0, 1)]
    for epoch in (0, 1):
        for sampler in (whole, *shares):
            sampler.set_epoch(epoch)
        draw, parts = list(whole), [list(s) for s in shares]
        assert [len(p) for p in parts] == [20, 20] and parts[0] != parts[1]
        assert draw[0::2] == parts[0] and draw[1::2] == parts[1]  # together, the one-process draw
        assert list(whole) == draw  # the same epoch draws the same indices
    whole.set_epoch(0)
    first = list(whole)
    whole.set_epoch(1)
    assert list(whole) != first
    assert list(WeightedEpochSampler(weights, 40, 1, 0, seed=8)) != list(
        WeightedEpochSampler(weights, 40, 1, 0, seed=7)
    )
    assert len(WeightedEpochSampler(weights, 41, world_size=2, rank=1, seed=0)) == 21  # rounded up per rank


class Weighted(SeparableImages):
    """SeparableImages whose odd samples have weight 0 and even samples weight 1."""

    def sample_weights(self):
        return (torch.arange(len(self)) % 2 == 0).double()


def test_the_trainer_draws_weighted_epochs_of_epoch_samples():
    torch.manual_seed(0)
    data = Weighted(12)
    config = TrainConfig(steps=5, batch_size=4, weighted_sampler=True, epoch_samples=8, warmup_steps=1, log_every=5)
    train(tiny_vit(), data, config, progress=False)
    assert len(data.seen) == 20 and all(i % 2 == 0 for i in data.seen)  # 5 steps x 4, only weighted samples
    sampler = WeightedEpochSampler(data.sample_weights(), 8, world_size=1, rank=0, seed=config.seed)
    for epoch in range(3):  # epochs of 8 / 4 = 2 steps, each the seeded draw of its epoch
        sampler.set_epoch(epoch)
        assert data.seen[8 * epoch : 8 * epoch + 8] == list(sampler)[: len(data.seen[8 * epoch : 8 * epoch + 8])]


def test_weighted_sampling_errors_say_what_to_do():
    with pytest.raises(TypeError, match=r"weighted_sampler=True needs a training dataset with a sample_weights\(\)"):
        train(tiny_vit(), SeparableImages(8), TrainConfig(steps=1, batch_size=4, weighted_sampler=True), progress=False)
    with pytest.raises(ValueError, match="epoch_samples is the length of a weighted epoch"):
        TrainConfig(epoch_samples=100)
    with pytest.raises(ValueError, match="epoch_samples=3 is fewer than one global batch"):
        config = TrainConfig(steps=1, batch_size=4, weighted_sampler=True, epoch_samples=3)
        train(tiny_vit(), Weighted(8), config, progress=False)

    class BadWeights(SeparableImages):
        def sample_weights(self):
            return torch.ones(3)

    with pytest.raises(ValueError, match=r"expected one per training sample, \[8\]"):
        train(tiny_vit(), BadWeights(8), TrainConfig(steps=1, batch_size=4, weighted_sampler=True), progress=False)
