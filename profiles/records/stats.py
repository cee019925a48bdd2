"""Statistics over repeats: median, min-max, quartiles."""

from __future__ import annotations

from dataclasses import dataclass

from partui.profiles.records.significance import NOISE_FLOOR, Contrast, contrast


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
    import numpy as np  # here, not at import: the dashboard starts without numpy

    v = np.asarray(list(values), dtype=float)
    if v.size == 0:
        nan = float("nan")
        return Summary(nan, nan, nan, nan, nan, 0)
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    return Summary(float(med), float(v.min()), float(v.max()), float(q1), float(q3), int(v.size))


# ---- per run ---------------------------------------------------------------------


def busy_shares(busy_ms, wall_ms: float) -> list[float]:
    """Per worker: busy time / wall time of the repeat (its idle share is 1 - this)."""
    return [b / wall_ms if wall_ms > 0 else float("nan") for b in busy_ms]


def imbalance(busy_ms) -> float:
    """Load imbalance: max / mean busy time over workers (1.0 = perfectly even)."""
    busy = [float(b) for b in busy_ms]
    mean = sum(busy) / len(busy) if busy else 0.0
    return max(busy) / mean if mean > 0 else float("nan")


def speedup(base_ms: float | None, t_ms: float) -> float:
    """base / t; NaN when there is no base to compare with."""
    if base_ms is None or not t_ms > 0 or base_ms != base_ms:
        return float("nan")
    return base_ms / t_ms


@dataclass(frozen=True)
class RunStats:
    """What a table row says about one run. Speedups name their baseline in the caller."""

    median: float
    min: float
    max: float
    iqr: float
    busy_share: list[float]  # per worker, of the median wall time
    idle_share: list[float]
    imbalance: float
    speedup_1w: float  # vs the same configuration with 1 worker
    speedup_honest: float  # vs the honest baseline
    efficiency: float  # speedup_honest / workers
    scaling_efficiency: float  # speedup_1w / workers
    # vs the same configuration with 1 worker: its verdict, and the whole comparison
    verdict_1w: str | None
    vs_1w: Contrast | None = None


def run_stats(
    result,
    one_worker=None,
    honest_ms: float | None = None,
    noise_floor: float = NOISE_FLOOR,
    drift: float = 1.0,
) -> RunStats:
    """Statistics of a RunResult; `one_worker` is the same configuration's 1-worker result
    (its repeats are what the verdict compares); `drift`: significance.run_drift of the two
    configurations' runs."""
    workers = result.config.workers
    shares = busy_shares(result.worker_busy_ms, result.median_ms)
    base_1w = one_worker.median_ms if one_worker is not None else None
    s1 = speedup(base_1w, result.median_ms)
    sh = speedup(honest_ms, result.median_ms)
    c = None  # a 1-worker run is its own twin (or one of the runs pooled in it)
    if one_worker is not None and workers > 1:
        c = contrast(one_worker.times_ms, result.times_ms, noise_floor, drift=drift)
    # BLAS's own threads are invisible to the engine: only its calling thread has spans
    imb = float("nan") if result.config.executor == "blas" else imbalance(result.worker_busy_ms)
    return RunStats(
        result.median_ms,
        result.min_ms,
        result.max_ms,
        result.q3_ms - result.q1_ms,
        shares,
        [1 - x for x in shares],
        imb,
        s1,
        sh,
        sh / workers,
        s1 / workers,
        c.verdict if c is not None else None,
        c,
    )


# ---- over worker counts ----------------------------------------------------------


@dataclass(frozen=True)
class AmdahlFit:
    serial_fraction: float  # s in T(p) = T1 * (s + (1 - s) / p), clamped to [0, 1]
    raw_serial_fraction: float  # unclamped: < 0 superlinear, > 1 slower with more workers
    t1_ms: float  # the fit's T(1)
    ceiling: float  # predicted speedup as p -> infinity: 1 / s (inf when s = 0)
    rms_error_ms: float  # how well the model fits the medians
    points: int


def amdahl_fit(times: dict[int, float]) -> AmdahlFit | None:
    """Least-squares fit of T(p) = a + b / p over worker counts p -> median ms.

    a is the serial time, b the parallel time at one worker: s = a / (a + b). Fitting
    both (not dividing by a measured T(1)) keeps one noisy point from setting the scale.
    None with fewer than two distinct worker counts.
    """
    ps = sorted(p for p in times if p >= 1 and times[p] == times[p])
    if len(ps) < 2:
        return None
    import numpy as np

    x = np.array([1.0 / p for p in ps])
    y = np.array([times[p] for p in ps], dtype=float)
    b, a = np.polyfit(x, y, 1)
    total = a + b
    if total <= 0:
        return None
    raw = float(a / total)
    s = min(1.0, max(0.0, raw))
    fitted = total * (s + (1 - s) * x)
    rms = float(np.sqrt(np.mean((fitted - y) ** 2)))
    return AmdahlFit(s, raw, float(total), 1.0 / s if s > 0 else float("inf"), rms, len(ps))


def karp_flatt(t1_ms: float, tp_ms: float, p: int) -> float:
    """Experimentally determined serial fraction e = (1/S - 1/p) / (1 - 1/p), S = T1/Tp.

    Rising with p: overhead grows with the workers (not a fixed serial part).
    """
    if p <= 1 or not tp_ms > 0 or not t1_ms > 0:
        return float("nan")
    s = t1_ms / tp_ms
    return (1 / s - 1 / p) / (1 - 1 / p)
