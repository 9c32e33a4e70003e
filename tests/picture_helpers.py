"""What the picture tests share: finding the runs of ink (labels, ticks, rules) along one axis of a picture."""

import numpy as np


def ink_runs(mask: np.ndarray, gap: int = 3) -> list[tuple[int, int]]:
    """(first, last) index of each run of True in a 1-D ``mask``, runs less than ``gap`` apart joined (one label)."""
    runs: list[tuple[int, int]] = []
    for i in np.flatnonzero(mask):
        if runs and i - runs[-1][1] < gap:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs
