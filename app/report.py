"""The main demo's report: one Markdown file with every modality's table, plots and merge pictures."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tokenmerge.experiments.comparison import comparison_note
from tokenmerge.experiments.evaluation import seeds_note


def markdown_table(rows: list[dict]) -> str:
    """Sweep rows as a Markdown table: r, tokens left, top-1 (or mAP), agreement with r=0, throughput, measured and
    FLOPs-ideal speedup; a model column when the rows come from several models, a scope column for video."""
    score = "mAP" if "mAP" in rows[0] else "top1"
    models = len({row.get("model", "") for row in rows}) > 1
    scopes = any(row.get("merge_scope") not in (None, "", "all") for row in rows)
    header = (["model"] if models else []) + [
        "method",
        *(["scope"] if scopes else []),
        "r",
        "tokens left",
        "top-1 %" if score == "top1" else "mAP %",
        "agreement %",
        "samples/s",
        "speedup",
        "FLOPs-ideal",
    ]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---"] * (models + 1 + scopes) + ["---:"] * 7) + " |"]
    for row in rows:
        r = str(row["r"]) + (" *" if row.get("note") else "")
        cells = ([row.get("model", "")] if models else []) + [
            row["method"],
            *([row.get("merge_scope") or ""] if scopes else []),
            r,
            str(row["final_tokens"]),
            f"{100 * row[score]:.1f}",
            f"{100 * row['agreement']:.1f}",
            f"{row['samples_per_s']:.1f}",
            f"{row['speedup']:.2f}x",
            f"{row['ideal_speedup']:.2f}x",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    notes = list(dict.fromkeys(row["note"] for row in rows if row.get("note")))
    if notes:
        lines += [""] + [f"\\* {note}" for note in notes]
    seeded = seeds_note(rows)
    if seeded:
        lines += ["", seeded + "."]
    compared = comparison_note(rows)
    if compared:
        lines += ["", compared + "."]
    return "\n".join(lines)


def _section(name: str, modality, record: dict, rows: list[dict], folder: Path, out_dir: Path) -> list[str]:
    how = "reused from an earlier run" if record.get("reused") else f"{record['seconds'] / 60:.1f} min"
    lines = [f"## {name.capitalize()}", "", modality.about, "", f"Samples: {rows[0]['samples']}; run time: {how}."]
    lines += ["", markdown_table(rows), ""]
    for plot in sorted(folder.glob("accuracy_vs_throughput*.png")):
        lines.append(f"![{name}: accuracy vs throughput]({plot.relative_to(out_dir).as_posix()})")
    merges = folder / "merges.png"
    if merges.is_file():
        link = merges.relative_to(out_dir).as_posix()
        lines += ["", f"Merged groups ({name}):", "", f"![{name}: merged groups]({link})"]
    return lines + [""]


def write_report(out_dir: Path, done: dict[str, tuple[object, dict]]) -> Path:
    """Write ``out_dir/report.md`` from each modality's ``results.json`` and pictures; returns its path.

    Args:
        out_dir: the demo's folder (``<out_dir>/<modality>/`` holds each modality's files).
        done: modality name -> (its ``app.demo.Modality``, its done record: seconds, reused).
    """
    out_dir = Path(out_dir)
    environment = {}
    sections = []
    for name, (modality, record) in done.items():
        folder = out_dir / name
        payload = json.loads((folder / "results.json").read_text())
        environment = environment or payload.get("environment", {})
        sections += _section(name, modality, record, payload["results"], folder, out_dir)
    versions = ", ".join(f"{k} {environment[k]}" for k in ("tokenmerge", "torch", "timm") if environment.get(k))
    lines = [
        "# tokenmerge demo: Token Merging on image, video and audio",
        "",
        f"Written {time.strftime('%Y-%m-%d %H:%M')} on {environment.get('processor', '?')} "
        f"({environment.get('gpu') or 'no GPU'}); {versions}. Throughput is measured on one thread, interleaved "
        "rounds, median; speedup is against the unmerged model timed in the same run; FLOPs-ideal is its FLOPs "
        "over the merged model's. Agreement is the share of samples where the merged model predicts what the "
        "unmerged one (r=0) predicts.",
        "",
        *sections,
    ]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path
