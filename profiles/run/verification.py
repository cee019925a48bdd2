"""Is a run's answer right? Its output against the float64 reference, within a tolerance
relative to the output's magnitude."""

from __future__ import annotations

import numpy as np

RELATIVE_TOLERANCE = 1e-4


def verify(output: np.ndarray, expected: np.ndarray) -> tuple[float, float, bool]:
    """(max abs error, tolerance, ok): tolerance is 1e-4 of the output's magnitude."""
    magnitude = float(np.abs(expected).max()) if expected.size else 0.0
    tol = RELATIVE_TOLERANCE * max(magnitude, float(np.finfo(np.float32).tiny))
    err = np.abs(output.astype(np.float64) - expected)
    max_err = float(err.max()) if err.size else 0.0
    ok = bool(np.isfinite(output).all()) and max_err <= tol
    if not np.isfinite(max_err):
        max_err = float("inf")
    return max_err, tol, ok
