"""A straight line fitted by least squares, with the spread of its two coefficients."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class LineFit:
    """y = intercept + slope * x over n points; *_se: standard errors (from the residuals);
    r2: the share of y's variance the line explains."""

    intercept: float
    slope: float
    intercept_se: float
    slope_se: float
    r2: float
    n: int

    def to_dict(self) -> dict:
        return asdict(self)


def fit_line(xs, ys) -> LineFit:
    """Ordinary least squares of y on x. Needs two distinct x values; with only two points
    the standard errors are 0 (nothing is left to estimate them from)."""
    x = [float(v) for v in xs]
    y = [float(v) for v in ys]
    n = len(x)
    if n != len(y) or n < 2:
        raise ValueError("a line needs at least two (x, y) points")
    mx, my = sum(x) / n, sum(y) / n
    sxx = sum((v - mx) ** 2 for v in x)
    if sxx == 0:
        raise ValueError("a line needs at least two distinct x values")
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    slope = sxy / sxx
    intercept = my - slope * mx
    sse = sum((b - intercept - slope * a) ** 2 for a, b in zip(x, y))
    syy = sum((b - my) ** 2 for b in y)
    s2 = sse / (n - 2) if n > 2 else 0.0
    slope_se = math.sqrt(s2 / sxx)
    intercept_se = math.sqrt(s2 * (1 / n + mx * mx / sxx))
    r2 = 1 - sse / syy if syy > 0 else 1.0
    return LineFit(intercept, slope, intercept_se, slope_se, r2, n)
