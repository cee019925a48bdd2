"""Statistics over repeats: median, min-max, quartiles."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Summary:
    median: float
    min: float
    max: float
    q1: float
    q3: float
    n: int

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1


def summarize(values) -> Summary:
    """Median, min, max and quartiles (linear interpolation, numpy's default)."""
    v = np.asarray(list(values), dtype=float)
    if v.size == 0:
        nan = float("nan")
        return Summary(nan, nan, nan, nan, nan, 0)
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    return Summary(float(med), float(v.min()), float(v.max()), float(q1), float(q3), int(v.size))
