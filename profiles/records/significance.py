"""Is one configuration faster than another? Two sets of timed repeats compared the way
timings need: a seeded bootstrap interval of the ratio of medians, a Mann-Whitney U test,
and a practical-noise floor below which a ratio does not count on a shared machine.

Timings are skewed (a floor set by the hardware, a long tail of interruptions), so neither
test assumes a distribution: the median ignores the tail, the bootstrap gives the ratio an
interval without a formula for its spread, and the rank test asks whether one sample tends
to be lower than the other. A difference is *significant* when both agree (p below ALPHA and
the whole interval beyond the noise floor); every place that says "faster" or "slower"
asks `contrast` and prints `Contrast.text` (or `Contrast.short`).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any

from partui.profiles.records.verdict_rules import (
    ALPHA,
    FASTER,
    LEVEL,
    MIN_REPEATS,
    NO_DIFFERENCE,
    NOISE_FLOOR,
    SLOWER,
    SPREAD_LIMIT,
    TOO_FEW,
    TOO_SPREAD,
    method_text,
)

RESAMPLES = 2000
SEED = 0
# Past this many repeats a side, the bootstrap resamples that many evenly spaced quantiles
# of the side instead: the interval of a smaller sample of the same distribution, a little
# wider (conservative), at a bounded cost (live mode pools thousands of repeats).
BOOTSTRAP_MAX = 400
EXACT_LIMIT = 25  # the exact U distribution for samples up to this size without ties

__all__ = [  # the rules are re-exported: callers ask this module
    "ALPHA",
    "FASTER",
    "LEVEL",
    "MIN_REPEATS",
    "NO_DIFFERENCE",
    "NOISE_FLOOR",
    "SLOWER",
    "SPREAD_LIMIT",
    "TOO_FEW",
    "TOO_SPREAD",
    "Contrast",
    "contrast",
    "mann_whitney_p",
    "median_ratio_interval",
    "method_text",
    "run_drift",
    "u_counts",
]


@dataclass(frozen=True)
class Contrast:
    """`other` against `base`. The ratio is of times: other's median / base's median, so
    below 1 `other` is faster. The interval is the bootstrap's at `level`."""

    ratio: float
    ci_low: float
    ci_high: float
    level: float
    p_value: float  # Mann-Whitney U, two-sided
    significant: bool
    verdict: str  # FASTER, SLOWER, NO_DIFFERENCE, TOO_FEW or TOO_SPREAD
    n_base: int
    n_other: int
    noise_floor: float  # as stated
    # how far apart the medians of one configuration's runs were (max / min, the larger of
    # the two sides; 1 with one run a side): a difference between the sides must exceed it
    # too, as it must the noise floor
    drift: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "text": self.text()}

    def text(self) -> str:
        """'1.38x faster [1.31-1.45]', 'no significant difference (0.98x the time
        [0.93-1.04])', 'too few repeats (3 and 5, need 5)'."""
        r, lo, hi = self.ratio, self.ci_low, self.ci_high
        if self.verdict == TOO_FEW:
            return f"{TOO_FEW} ({self.n_base} and {self.n_other}, need {MIN_REPEATS})"
        if self.verdict == FASTER:
            return f"{_f(1 / r)}x faster [{_f(1 / hi)}-{_f(1 / lo)}]"
        if self.verdict == SLOWER:
            return f"{_f(r)}x slower [{_f(lo)}-{_f(hi)}]"
        why = ""
        if self.drift > self.noise_floor:
            why = f"; runs of one configuration {_f(self.drift)}x apart"
        return f"{self.verdict} ({_f(r)}x the time [{_f(lo)}-{_f(hi)}]{why})"

    def short(self) -> str:
        """For a narrow cell: the speedup (base / other) with its interval when significant,
        else 'n.s.', 'spread' or 'few'."""
        if self.significant:
            return f"{_f(1 / self.ratio)}x [{_f(1 / self.ci_high)}-{_f(1 / self.ci_low)}]"
        return {NO_DIFFERENCE: "n.s.", TOO_SPREAD: "spread", TOO_FEW: "few"}[self.verdict]


def _f(v: float) -> str:
    if v != v or math.isinf(v):
        return "-"
    return f"{v:.2f}" if v < 100 else f"{v:.0f}"


def contrast(
    base,
    other,
    noise_floor: float = NOISE_FLOOR,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    drift: float = 1.0,
) -> Contrast:
    """Compare two sets of repeats (times, lower is better). The same data gives the same
    answer: the resampling is seeded and the samples are sorted first, so their order does
    not matter. `drift` (run_drift): how far apart runs of one configuration were; the
    ratio must clear it as well as the noise floor."""
    import numpy as np  # here, not at import: the dashboard starts without numpy

    a = tuple(sorted(float(v) for v in base if v == v))
    b = tuple(sorted(float(v) for v in other if v == v))
    nan = float("nan")
    drift = drift if drift >= 1 else 1.0  # also NaN
    na, nb = len(a), len(b)
    if na == 0 or nb == 0:
        return Contrast(nan, nan, nan, level, nan, False, TOO_FEW, na, nb, noise_floor, drift)
    # times read from a file can be as large as a float goes: a median of two of them
    # overflows to inf, and an infinite ratio reads as no answer, not as a warning
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        ma = float(np.median(a))
        ratio = float(np.median(b)) / ma if ma > 0 else nan
        lo, hi, p = _tests(a, b, level, resamples, seed)
    floor = max(noise_floor, drift)
    if min(na, nb) < MIN_REPEATS:
        said, significant = TOO_FEW, False
    elif p < ALPHA and hi < 1 / floor:
        said, significant = FASTER, True
    elif p < ALPHA and lo > floor:
        said, significant = SLOWER, True
    elif not hi <= lo * SPREAD_LIMIT:  # also when the interval is not defined
        said, significant = TOO_SPREAD, False
    else:
        said, significant = NO_DIFFERENCE, False
    return Contrast(ratio, lo, hi, level, p, significant, said, na, nb, noise_floor, drift)


CACHE_SIZE = 256  # answers kept by _tests (three floats each)
# resampled medians kept (RESAMPLES float64 each): the side used again and again (the
# 1-worker twin of every row) stays the most recently used
MEDIANS_KEPT = 32
_TESTS: OrderedDict = OrderedDict()
_MEDIANS: OrderedDict = OrderedDict()
_CACHE_LOCK = threading.Lock()


def _digest(values: tuple) -> tuple[int, bytes]:
    """A sample's cache key, of a fixed size: live mode pools thousands of repeats a side
    (every repeat of the runs kept), and a cache keyed by the samples themselves would hold
    every one of them."""
    import hashlib

    import numpy as np

    packed = np.asarray(values, dtype=float).tobytes()
    return len(values), hashlib.blake2b(packed, digest_size=16).digest()


def _kept(cache: OrderedDict, key, make, size: int = CACHE_SIZE):
    """cache[key], made with make() the first time; the least recently used go past
    `size`."""
    with _CACHE_LOCK:
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
    value = make()
    with _CACHE_LOCK:
        cache[key] = value
        while len(cache) > size:
            cache.popitem(last=False)
    return value


def _tests(a: tuple, b: tuple, level: float, resamples: int, seed: int):
    """The costly part, kept: a table redrawn after each run asks again about the same
    repeats."""
    import numpy as np

    def make():
        lo, hi = median_ratio_interval(a, b, level, resamples, seed)
        return lo, hi, mann_whitney_p(np.asarray(a), np.asarray(b))

    return _kept(_TESTS, (_digest(a), _digest(b), level, resamples, seed), make)


def _resampled_medians(values: tuple, resamples: int, seed: int, side: int):
    """The medians of `resamples` resamples of one side, drawn from its own stream: a side
    compared with many others (the 1-worker twin of every row) is resampled once."""
    return _kept(
        _MEDIANS,
        (_digest(values), resamples, seed, side),
        lambda: _draw_medians(values, resamples, seed, side),
        MEDIANS_KEPT,
    )


def _draw_medians(values: tuple, resamples: int, seed: int, side: int):
    import numpy as np

    v = np.asarray(values, dtype=float)
    if v.size > BOOTSTRAP_MAX:
        v = np.quantile(v, (np.arange(BOOTSTRAP_MAX) + 0.5) / BOOTSTRAP_MAX)
    rng = np.random.default_rng([seed, side])
    medians = np.median(v[rng.integers(0, v.size, (resamples, v.size))], axis=1)
    medians.flags.writeable = False  # shared by every caller
    return medians


def run_drift(*sides) -> float:
    """How far apart the runs of one configuration were: the largest ratio of the highest to
    the lowest run median within a side (each side a list of runs, each a list of repeats).
    Repeats of one run share its moment (a busy spell, a frequency, a cache state); the
    next run of the same configuration can sit several percent away, and a difference
    between two snapshots smaller than that is no evidence. 1 with one run a side."""
    import numpy as np

    out = 1.0
    for runs in sides:
        with np.errstate(over="ignore", invalid="ignore"):  # see contrast
            medians = [float(np.median(r)) for r in runs if len(r)]
        if len(medians) >= 2 and min(medians) > 0:
            out = max(out, max(medians) / min(medians))
    return out


def median_ratio_interval(base, other, level: float, resamples: int, seed: int):
    """Percentile bootstrap interval of median(other) / median(base): each side resampled
    with replacement, on its own, `resamples` times (past BOOTSTRAP_MAX repeats, from that
    many evenly spaced quantiles of the side)."""
    import numpy as np

    ma = _resampled_medians(tuple(base), resamples, seed, 0)
    mb = _resampled_medians(tuple(other), resamples, seed, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = mb / ma
    r = r[np.isfinite(r)]
    if r.size < resamples // 2:  # medians of zero: no ratio to speak of
        return float("nan"), float("nan")
    tail = (1 - level) / 2
    lo, hi = np.quantile(r, [tail, 1 - tail])
    return float(lo), float(hi)


def mann_whitney_p(x, y) -> float:
    """Two-sided p-value of the Mann-Whitney U test: exact for small samples without ties,
    else the normal approximation with the tie and continuity corrections."""
    import numpy as np

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    m, n = x.size, y.size
    if m == 0 or n == 0:
        return float("nan")
    both = np.concatenate([x, y])
    ranks, ties = _ranks(both)
    u = float(ranks[:m].sum() - m * (m + 1) / 2)
    u_low = min(u, m * n - u)
    if not ties and max(m, n) <= EXACT_LIMIT:
        counts = u_counts(m, n)
        total = sum(counts)
        tail = sum(counts[: int(u_low) + 1])
        return min(1.0, 2 * tail / total)
    big = m + n
    tie_term = sum(t**3 - t for t in ties) / (big * (big - 1))
    sigma = math.sqrt(m * n / 12 * ((big + 1) - tie_term))
    if sigma == 0:
        return 1.0  # every value the same
    z = max(0.0, abs(u - m * n / 2) - 0.5) / sigma
    return min(1.0, math.erfc(z / math.sqrt(2)))


def _ranks(values) -> tuple[Any, list[int]]:
    """Ranks from 1 (ties get their average rank) and the sizes of the tied groups."""
    import numpy as np

    order = np.argsort(values, kind="mergesort")
    sorted_v = values[order]
    ranks = np.empty(values.size, dtype=float)
    ties: list[int] = []
    i = 0
    while i < values.size:
        j = i
        while j + 1 < values.size and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        if j > i:
            ties.append(j - i + 1)
        i = j + 1
    return ranks, ties


def u_counts(m: int, n: int) -> list[int]:
    """How many orderings of m + n distinct values give U = 0, 1, ..., m n: the coefficients
    of the Gaussian binomial [m + n choose m], prod (1 - q^(n+i)) / (1 - q^i) for i in 1..m."""
    import numpy as np

    size = m * n + 1
    c = np.zeros(size, dtype=np.int64)  # C(50, 25) < 2**63: no overflow at EXACT_LIMIT
    c[0] = 1
    for i in range(1, m + 1):
        s = n + i
        if s < size:  # times (1 - q^s), from the old values
            c[s:] = c[s:] - c[:-s]
        # divided by (1 - q^i): c[k] += c[k - i] in rising k, a running sum per residue mod i
        pad = -size % i
        grid = np.concatenate([c, np.zeros(pad, dtype=np.int64)]).reshape(-1, i)
        c = np.cumsum(grid, axis=0).reshape(-1)[:size]
    return [int(v) for v in c]
