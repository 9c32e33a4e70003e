"""The shipped embedded video model: it solves the moving-objects task on held-out clips, it needs time to do it,
and merging keeps its predictions better than random dropping does."""

import pytest
import torch

from tokenmerge.video.embedded import WEIGHTS, load_embedded_model
from tokenmerge.video.moving_objects import validation_clips
from tokenmerge.video.patch import apply_patch
from tokenmerge.video.train_embedded import time_controls


@pytest.mark.skipif(not WEIGHTS.is_file(), reason="embedded video weights not trained yet")
def test_shipped_model_needs_time_and_keeps_its_predictions_under_merging():
    torch.set_num_threads(1)
    model = load_embedded_model().model
    clips, labels = validation_clips(per_class=10, seed=5)
    # Measured on these 100 clips: top-1 83% (chance 10%; one frame can at best tell which two objects are there,
    # 50%), 47% with the frames shuffled, 51% on one frame repeated; at r=64 ToMe agrees with the unmerged model on
    # 95%, random dropping on 90%.
    controls = time_controls(model, clips, labels)
    assert controls["clips"] >= 0.78
    assert (
        controls["shuffled_frames"] <= controls["clips"] - 0.2 and controls["single_frame"] <= controls["clips"] - 0.2
    )
    with torch.no_grad():
        plain = model(clips).argmax(-1)
        agreement = {}
        for method in ("tome", "random_drop"):
            handle = apply_patch(model, r=64, method=method, seed=None if method == "tome" else 0)
            agreement[method] = (model(clips).argmax(-1) == plain).float().mean()
            handle.remove()
    assert agreement["tome"] >= 0.93 and agreement["random_drop"] < agreement["tome"] - 0.03
