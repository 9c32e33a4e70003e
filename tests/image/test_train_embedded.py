"""The embedded model's training script runs end to end (a few steps) and saves a loadable checkpoint."""

import torch

from tokenmerge.image.embedded import load_embedded_model
from tokenmerge.image.train_embedded import train


def test_a_few_training_steps_save_a_loadable_model(tmp_path):
    torch.set_num_threads(1)
    path = tmp_path / "m.safetensors"
    model, accuracy = train(steps=2, batch_size=8, warmup=1, eval_every=2, workers=0, tome_r=4, out=path)
    loaded, classes = load_embedded_model(path)
    assert len(classes) == 21 and 0 <= accuracy <= 1
    images = torch.randn(2, 3, 32, 32)
    assert loaded(images).shape == (2, 21)
