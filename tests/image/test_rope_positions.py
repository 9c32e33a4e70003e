"""The position-rule comparison runs end to end and reports what it measured (small random RoPE model)."""

import json

import torch

from tokenmerge.image import rope_positions
from tokenmerge.image.photo_objects import PHOTOS
from tokenmerge.image.rope_embedded import create_rope_model, load_rope_model, save_rope_model


def test_the_comparison_writes_one_row_per_r_and_rule(tmp_path, capsys):
    torch.manual_seed(0)
    model = create_rope_model(len(PHOTOS))
    weights = save_rope_model(model, sorted(PHOTOS), tmp_path / "rope.safetensors", steps=0)
    assert load_rope_model(weights).model.rope is not None
    out = tmp_path / "rope.json"
    rope_positions.main(["--weights", str(weights), "--per-class", "1", "--r", "4", "8", "--out", str(out)])
    record = json.loads(out.read_text())
    rows = record["rows"]
    assert record["images"] == len(PHOTOS) and record["dtype"] == "float32"
    assert [(row["r"], row["method"], row["position_rule"]) for row in rows] == [
        (0, "none", "-"),
        *[(r, m, p if m == "tome" else "-") for r in (4, 8) for m, p in rope_positions.METHODS],
    ]
    assert rows[0]["agreement"] == 100.0
    assert [row["final_tokens"] for row in rows[1:]] == [65 - 6 * 4] * 3 + [65 - 6 * 8] * 3  # 6 blocks
    assert "destination" in capsys.readouterr().out
