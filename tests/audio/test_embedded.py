"""The embedded audio models: the training script runs (a few steps, with merging and from saved weights) and saves
a loadable model; the shipped weights load, and merging on the model fine-tuned with it keeps its predictions."""

import pytest
import torch

from tokenmerge.audio import apply_patch
from tokenmerge.audio.embedded import WEIGHTS, WEIGHTS_TOME, load_embedded_model
from tokenmerge.audio.spoken_words import WORDS, SpokenWordsDataset
from tokenmerge.audio.train_embedded import train
from tokenmerge.experiments.embedded_training import EmbeddedRecipe


def test_a_few_training_steps_with_merging_save_a_loadable_model(tmp_path):
    torch.set_num_threads(1)
    first = tmp_path / "first.safetensors"
    recipe = EmbeddedRecipe(steps=2, batch_size=4, warmup=1, eval_every=2, workers=0)
    train(recipe, utterances_per_word=2, out=first)
    tuned_recipe = EmbeddedRecipe(steps=2, batch_size=4, warmup=1, eval_every=2, workers=0, tome_r=8)
    model, run = train(tuned_recipe, init=first, utterances_per_word=2, out=tmp_path / "tuned.safetensors")
    tuned = load_embedded_model(tmp_path / "tuned.safetensors")
    loaded, classes, info = tuned.model, tuned.classes, tuned.info
    assert classes == list(WORDS) and info["tome_r"] == 8 and info["init"] == "first.safetensors"
    assert 0 <= run.accuracy <= 1 and "forward" not in loaded.__dict__  # weights only: the patch is not saved
    assert loaded(torch.randn(2, 1, 128, 128)).shape == (2, len(WORDS))


@pytest.mark.skipif(not WEIGHTS_TOME.is_file(), reason="embedded audio weights not trained yet")
def test_shipped_models_keep_their_predictions_under_merging_on_unseen_voices():
    data = SpokenWordsDataset(100, seed=5, split="val", train=False, utterances_per_word=10)
    features = torch.stack([data[i][0] for i in range(100)])
    labels = torch.tensor([data[i][1] for i in range(100)])
    for path in (WEIGHTS, WEIGHTS_TOME):
        model = load_embedded_model(path).model
        with torch.no_grad():
            plain = model(features)
            handle = apply_patch(model, r=8)
            merged = model(features)
            handle.remove()
            handle = apply_patch(model, r=8, method="random_drop", seed=0)
            dropped = model(features)
            handle.remove()
        # Measured on these 100 clips: top-1 94% and 96% (chance 10%); ToMe r=8 agrees with the unmerged model on 100%
        # and 100%, random dropping on 90% and 91%.
        agreement = (merged.argmax(-1) == plain.argmax(-1)).float().mean()
        assert (plain.argmax(-1) == labels).float().mean() >= 0.88 and agreement >= 0.98
        assert (dropped.argmax(-1) == plain.argmax(-1)).float().mean() < agreement - 0.05
