"""Which position should a merged token rotate by? The two rules compared on the embedded RoPE ViT.

    python -m tokenmerge.image.rope_positions [--per-class 50] [--r 2 4 6 8 10] [--out results/rope_positions.json]

In a RoPE model every block rotates queries and keys by the tokens' positions, so a merged token needs one
(:mod:`tokenmerge.core.positions`): ``mean``, the size-weighted mean of its members' coordinates, or ``destination``,
the position of the token it merged into. For each r this measures, on held-out images of the embedded photo-object
task (seed 2, not the training or validation stream), how often the merged model predicts what the unmerged model
predicts (agreement), the mean KL divergence of its predictions from the unmerged ones (finer than agreement, which
moves by whole images) and its top-1, for both rules and for random dropping (which keeps positions exact: a floor
for what merging costs). Prints a table and writes JSON with the rows, the model file, dtype and thread count.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from tokenmerge.experiments.cli import HelpFormatter, user_errors
from tokenmerge.experiments.metrics import agreement, kl_divergence, topk_accuracy

from .patch import apply_patch
from .rope_embedded import WEIGHTS, load_rope_model
from .train_embedded import validation_set

SEED = 2  # the training stream is seed 0 and the validation set seed 1
METHODS = (("tome", "mean"), ("tome", "destination"), ("random_drop", "mean"))


def predict(model: torch.nn.Module, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """Logits [N, K] for images [N, 3, H, W], in batches."""
    with torch.no_grad():
        return torch.cat([model(images[i : i + batch]) for i in range(0, len(images), batch)])


def compare_rules(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, rs: list[int]) -> list[dict]:
    """One row per (r, method, position_rule): agreement with the unmerged model and top-1, in percent."""
    reference = predict(model, images)
    top1 = 100 * topk_accuracy(reference, labels)
    rows = [dict(r=0, method="none", position_rule="-", agreement=100.0, kl=0.0, top1=top1)]
    for r in rs:
        for method, rule in METHODS:
            handle = apply_patch(model, r=r, method=method, position_rule=rule, seed=0)
            logits = predict(model, images)
            tokens = handle.tokens_per_layer(model.patch_embed.num_patches + model.num_prefix_tokens)[-1]
            handle.remove()
            rows.append(
                dict(
                    r=r,
                    method=method,
                    position_rule=rule if method == "tome" else "-",
                    final_tokens=tokens,
                    agreement=100 * agreement(logits, reference),
                    kl=kl_divergence(logits, reference),
                    top1=100 * topk_accuracy(logits, labels),
                )
            )
    return rows


def format_rows(rows: list[dict]) -> str:
    """The rows as a plain-text table."""
    lines = [f"{'r':>3} {'method':<12} {'position':<12} {'tokens':>6} {'agreement %':>11} {'KL':>7} {'top-1 %':>8}"]
    for row in rows:
        tokens = row.get("final_tokens", "")
        lines.append(
            f"{row['r']:>3} {row['method']:<12} {row['position_rule']:<12} {tokens:>6} {row['agreement']:>11.1f} "
            f"{row['kl']:>7.4f} {row['top1']:>8.1f}"
        )
    return "\n".join(lines)


@user_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tokenmerge.image.rope_positions", description=__doc__,
                                     formatter_class=HelpFormatter)  # fmt: skip
    parser.add_argument("--weights", default=str(WEIGHTS), help="the RoPE model's weights")
    parser.add_argument("--per-class", type=int, default=50, help="held-out images per class")
    parser.add_argument("--r", type=int, nargs="+", default=[2, 4, 6, 8, 10], help="tokens merged per block")
    parser.add_argument("--out", default="results/rope_positions.json", help="JSON file to write")
    args = parser.parse_args(argv)
    loaded = load_rope_model(args.weights)
    images, labels = validation_set(per_class=args.per_class, size=32, seed=SEED).tensors
    rows = compare_rules(loaded.model, images, labels, args.r)
    print(format_rows(rows))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    record = dict(weights=str(args.weights), images=len(labels), dtype="float32", threads=torch.get_num_threads())
    out.write_text(json.dumps(record | {"rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
