"""Does ToMe beat the random baselines? One sentence on a sweep's rows, for its table and the demo report.

ToMe (deterministic) is compared with every baseline row (random merging or dropping, seed-averaged) of the same
model, merge scope and r, on the task score (top-1 or mAP) and on agreement with the unmerged model. With few
samples a gap of one or two samples decides the order, so small runs (quick mode) say that they are too small
to compare methods rather than print an order that noise made.
"""

from __future__ import annotations

#: Below this many samples a sweep is called too small to order methods (one sample is >= 0.2 points).
MIN_SAMPLES_TO_COMPARE = 500


#: Scores closer than this are a tie (seed means of equal counts differ in the last float bits).
TIE = 1e-6


def _where(row: dict, models: bool) -> str:
    """ " (spacetime)", " (model a)" or "": what tells a baseline row apart beyond method and r."""
    parts = ([row["model"]] if models and row.get("model") else []) + (
        [row["merge_scope"]] if row.get("merge_scope") not in (None, "", "all") else []
    )
    return f" ({', '.join(parts)})" if parts else ""


def _key(row: dict) -> tuple:
    r = tuple(row["r"]) if isinstance(row["r"], list) else row["r"]
    return row.get("model", ""), row.get("merge_scope", ""), r


def comparison_note(rows: list[dict]) -> str:
    """A sentence comparing ToMe with the baselines at every r of ``rows`` (sweep or seed-averaged rows), or "".

    Returns "" when the rows hold no ToMe row with a baseline at the same model, scope and r.
    """
    score = "mAP" if "mAP" in rows[0] else "top1"
    tome = {_key(row): row for row in rows if row["method"] == "tome" and row["r"] != 0}
    pairs = [(tome[_key(row)], row) for row in rows if row["method"] != "tome" and _key(row) in tome]
    if not pairs:
        return ""
    models = len({row.get("model", "") for row in rows}) > 1
    behind = [
        f"{base['method']} at r={base['r']}" + _where(base, models)
        for ours, base in pairs
        if ours[score] < base[score] - TIE or ours["agreement"] < base["agreement"] - TIE
    ]
    samples = min(row["samples"] for row in rows)
    small = samples < MIN_SAMPLES_TO_COMPARE
    baselines = ", ".join(dict.fromkeys(base["method"] for _, base in pairs))
    what = "mAP" if score == "mAP" else "top-1"
    if not behind:
        verdict = f"ToMe's {what} and agreement are at or above {baselines} at every r"
        return verdict + (f" (only {samples} samples: too few to be sure of the order)" if small else "")
    verdict = f"ToMe is below in {what} or agreement: {', '.join(behind)}"
    if small:
        return (
            f"{verdict}. With only {samples} samples (one sample = {100 / samples:.1f} points) this run is too small "
            "to compare methods; run without --quick"
        )
    return verdict
