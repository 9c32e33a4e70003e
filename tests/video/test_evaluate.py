"""Video sweeps: multi-view averaging and a sweep over both scopes on a tiny model."""

import pytest
import torch

from tokenmerge.experiments.data import Batch
from tokenmerge.experiments.evaluation import Setting, format_table
from tokenmerge.video import SpatiotemporalViT
from tokenmerge.video.evaluate import multiview_forward, sweep

TINY = dict(num_frames=4, t_patch_size=2, img_size=16, patch_size=4, embed_dim=32, depth=2, num_heads=2, num_classes=3)


def test_multiview_forward_averages_softmax_over_views():
    torch.manual_seed(0)
    model = SpatiotemporalViT(**TINY).eval()
    clips = torch.randn(2, 3, 3, 4, 16, 16)  # 2 videos x 3 views
    with torch.no_grad():
        out = multiview_forward(model, clips)
        expected = torch.stack([model(clips[:, v]).softmax(-1) for v in range(3)]).mean(0).log()
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(2))


def test_sweep_over_scopes_restores_the_model():
    torch.manual_seed(0)
    model = SpatiotemporalViT(**TINY).eval()
    g = torch.Generator().manual_seed(1)
    loader = [Batch(torch.randn(5, 2, 3, 4, 16, 16, generator=g), torch.randint(0, 3, (5,), generator=g), [])]
    settings = [Setting("tome", 4, "spacetime"), Setting("tome", 4, "frame"), Setting("random_drop", 4, "spacetime")]
    rows = sweep(model, loader, settings, throughput_batch=2, throughput_rounds=1)
    assert [(r["method"], r["merge_scope"]) for r in rows] == [
        ("tome", "spacetime"),
        ("tome", "spacetime"),
        ("tome", "frame"),
        ("random_drop", "spacetime"),
    ]
    assert rows[0]["agreement"] == 1.0 and rows[0]["final_tokens"] == 33
    assert rows[1]["schedule"] == [4, 4] and rows[2]["schedule"] == [4, 4]
    assert all(r["ideal_speedup"] >= 1.0 and r["samples"] == 5 for r in rows)
    table = format_table(rows).splitlines()  # header, rule, 4 rows, ToMe against random dropping (5 samples: too few)
    assert "forward" not in model.__dict__ and len(table) == 7 and "only 5 samples" in table[-1]
    assert rows[1]["ideal_speedup"] == pytest.approx(rows[2]["ideal_speedup"], rel=0.02)
