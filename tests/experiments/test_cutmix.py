"""CutMix and the mixup/CutMix switch (experiments/batch_mixing.py): the box, the area-corrected lambda, where the
pasted pixels come from, seeding, the switch probabilities, and the trainer mixing its batches with it."""

import pytest
import torch

from tokenmerge.experiments import TrainConfig, train
from tokenmerge.experiments.batch_mixing import cutmix, mix_batch

from .training_helpers import tiny_vit

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/experiments/conftest.py


def marked(shape):
    """A batch whose sample i is the constant i + 1 everywhere: each pixel tells which sample it came from."""
    return torch.arange(1.0, shape[0] + 1).view(-1, *[1] * (len(shape) - 1)).expand(shape).clone()


LAYOUTS = {"clip": (4, 3, 6, 8, 10), "spectrogram": (4, 1, 12, 16), "image": (5, 3, 8, 8)}


@pytest.mark.parametrize("shape", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_cutmix_pastes_one_box_of_the_flipped_batch_and_corrects_lambda_to_its_area(shape):
    x = marked(shape)
    for seed in range(20):
        torch.manual_seed(seed)
        mixed, lam = cutmix(x, 0.6)
        pasted = mixed != x
        from_flipped = mixed == x.flip(0)
        assert torch.equal(pasted | (mixed == x), torch.ones_like(pasted))  # every pixel is its own or its partner's
        middle = shape[0] // 2
        if shape[0] % 2:  # the middle sample is its own partner: nothing visible changes
            assert not pasted[middle].any()
        box = from_flipped[0].reshape(-1, *shape[-2:])[0]  # the box in the first channel (and frame)
        assert torch.equal(from_flipped[0], box.expand_as(from_flipped[0]))  # the same box in every channel/frame
        rows, cols = box.any(1).nonzero().flatten(), box.any(0).nonzero().flatten()
        if len(rows):
            assert box.sum() == len(rows) * len(cols)  # one rectangle
            assert rows.diff().eq(1).all() and cols.diff().eq(1).all()
        assert lam == pytest.approx(1 - box.float().mean().item())  # lambda is the share left uncovered
        assert torch.equal(x, marked(shape))  # the input is not changed in place


def test_cutmix_boxes_are_drawn_from_the_seed_and_clipped_at_the_border():
    x = marked((2, 1, 20, 20))
    draws = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        draws.append(cutmix(x, 0.3))
    assert torch.equal(draws[0][0], draws[1][0]) and draws[0][1] == draws[1][1]
    assert not torch.equal(draws[0][0], draws[2][0])
    lams = []
    for seed in range(200):
        torch.manual_seed(seed)
        lams.append(cutmix(x, 0.3)[1])
    # a centred box covers int(20 * sqrt(0.7)) // 2 * 2 = 16 rows and columns (lambda 0.36); clipped boxes cover less
    assert min(lams) == pytest.approx(1 - 16 * 16 / 400) and max(lams) > 0.5


def classify(x, mixed):
    """'none', 'cutmix' (every pixel is its own or its partner's) or 'mixup' (blended pixels)."""
    if torch.equal(mixed, x):
        return "none"
    return "cutmix" if bool(((mixed == x) | (mixed == x.flip(0))).all()) else "mixup"


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"mixup_alpha": 0.8, "cutmix_alpha": 1.0, "mixup_switch_prob": 0.5}, {"cutmix": 0.5, "mixup": 0.5}),
        ({"mixup_alpha": 0.8, "cutmix_alpha": 1.0, "mixup_switch_prob": 0.2}, {"cutmix": 0.2, "mixup": 0.8}),
        ({"cutmix_alpha": 1.0, "mixup_prob": 0.3}, {"cutmix": 0.3, "none": 0.7}),
        ({"mixup_alpha": 0.8, "mixup_prob": 0.0}, {"none": 1.0}),
        ({}, {"none": 1.0}),
    ],
)
def test_the_switch_and_mix_probabilities(settings, expected):
    config = TrainConfig(**settings)
    x = marked((4, 3, 16, 16))
    torch.manual_seed(0)
    kinds = [classify(x, mix_batch(x, config)[0]) for _ in range(600)]
    for kind, share in expected.items():
        assert kinds.count(kind) / len(kinds) == pytest.approx(share, abs=0.06)
    assert set(kinds) <= set(expected) | {"none"}  # CutMix can draw an empty box


def test_mix_batch_is_deterministic_with_the_seed_and_returns_the_corrected_lambda():
    config = TrainConfig(mixup_alpha=0.8, cutmix_alpha=1.0)
    x = marked((4, 1, 16, 16))
    runs = []
    for seed in (3, 3, 4):
        torch.manual_seed(seed)
        runs.append([mix_batch(x, config) for _ in range(10)])
    assert all(torch.equal(a[0], b[0]) and a[1] == b[1] for a, b in zip(runs[0], runs[1], strict=True))
    assert any(not torch.equal(a[0], b[0]) for a, b in zip(runs[0], runs[2], strict=True))
    for mixed, lam in runs[0]:
        own = (mixed == x).float().mean().item()
        if classify(x, mixed) == "cutmix":
            assert lam == pytest.approx(own)
        else:  # mixup: sample 0 holds lam * 1 + (1 - lam) * 4
            assert mixed[0, 0, 0, 0].item() == pytest.approx(lam + 4 * (1 - lam))


def test_cutmix_on_another_layout_says_what_it_expects():
    config = TrainConfig(cutmix_alpha=1.0, mixup_alpha=0.8)
    with pytest.raises(ValueError, match=r"cutmix cuts a box out of the last two dims of images \[B, C, H, W\], clips"):
        mix_batch(torch.zeros(4, 10, 32), config)  # token sequences [B, N, C]
    mix_batch(torch.zeros(4, 10, 32), TrainConfig(mixup_alpha=0.8))  # mixup takes any layout
    for settings, message in [
        ({"cutmix_alpha": -1.0}, "cutmix_alpha must be >= 0"),
        ({"mixup_prob": 1.5}, r"mixup_prob must be in \[0, 1\]"),
        ({"mixup_switch_prob": -0.1}, r"mixup_switch_prob must be in \[0, 1\]"),
    ]:
        with pytest.raises(ValueError, match=message):
            TrainConfig(**settings)


class Marked(torch.utils.data.Dataset):
    """Image i [3, 32, 32] is the constant i + 1; label i % 3. ``seen`` lists the indices read, in order."""

    def __init__(self):
        self.seen = []

    def __len__(self):
        return 16

    def __getitem__(self, i):
        self.seen.append(i)
        return torch.full((3, 32, 32), i + 1.0), i % 3


def test_the_trainer_cutmixes_its_batches():
    torch.manual_seed(0)
    model, data, inputs = tiny_vit(), Marked(), []
    model.register_forward_pre_hook(lambda module, args: inputs.append(args[0].clone()))
    config = TrainConfig(steps=6, batch_size=8, cutmix_alpha=1.0, warmup_steps=1, log_every=6)
    train(model, data, config, progress=False)
    batches = [data.seen[8 * step : 8 * step + 8] for step in range(6)]
    originals = [torch.tensor(b).add(1.0).view(8, 1, 1, 1).expand(8, 3, 32, 32) for b in batches]
    kinds = [classify(original, x) for original, x in zip(originals, inputs, strict=True)]
    assert set(kinds) <= {"cutmix", "none"} and kinds.count("cutmix") >= 4
