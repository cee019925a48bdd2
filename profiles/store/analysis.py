"""Put runs side by side: each run's statistics against its 1-worker twin and the honest
baseline, and the scaling of each configuration over worker counts (Amdahl, Karp-Flatt)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from partui.profiles.records.results import timing
from partui.profiles.records.significance import NOISE_FLOOR, Contrast, contrast, run_drift
from partui.profiles.records.stats import AmdahlFit, RunStats, amdahl_fit, karp_flatt, run_stats
from partui.profiles.store.baselines import Baseline, key_of

if TYPE_CHECKING:  # the engine imports numpy; analysis runs without it
    from partui.profiles.records.results import RunResult


def pool(results):
    """Several runs of one configuration as one: every repeat of every run counts.

    The median and min-max are over all repeats; per-worker busy time and on-CPU ratio are
    the medians over runs (NaN ratios left out); the spans are the last run's. One run
    comes back as it is.
    """
    results = list(results)
    if len(results) == 1:
        return results[0]
    import math

    last = results[-1]
    times = [t for r in results for t in r.times_ms]

    def per_worker(values_of):
        lists = [values_of(r) for r in results]
        width = max((len(v) for v in lists), default=0)
        out = []
        for w in range(width):
            vals = sorted(v[w] for v in lists if w < len(v) and not math.isnan(v[w]))
            out.append(vals[len(vals) // 2] if vals else float("nan"))
        return out

    errors = [r.max_abs_error for r in results]
    return replace(
        last,
        **timing(times),
        max_abs_error=max(errors),
        ok=all(r.ok for r in results),
        worker_busy_ms=per_worker(lambda r: r.worker_busy_ms),
        on_cpu_ratio=per_worker(lambda r: r.on_cpu_ratio),
        pool_startup_ms=max(r.pool_startup_ms for r in results),
    )


def runs_by_config(results) -> dict[tuple, list[RunResult]]:
    """config_key -> the runs of that configuration (in first-seen order)."""
    groups: dict[tuple, list] = {}
    for r in results:
        groups.setdefault(r.config.key(), []).append(r)
    return groups


def pooled_by_config(results) -> dict[tuple, RunResult]:
    """config_key -> every run of that configuration pooled (in first-seen order)."""
    return {k: pool(v) for k, v in runs_by_config(results).items()}


def drift_of(*sides: list[RunResult]) -> float:
    """significance.run_drift of some configurations' runs."""
    return run_drift(*([r.times_ms for r in runs] for runs in sides))


@dataclass
class Row:
    result: RunResult
    stats: RunStats
    baseline: Baseline | None


@dataclass
class Series:
    key: tuple
    times: dict[int, float]  # workers -> median ms
    fit: AmdahlFit | None  # None also when withheld
    karp_flatt: dict[int, float]  # workers -> e (needs a 1-worker run; significant points)
    # workers -> the fewest workers' repeats against this count's
    contrasts: dict[int, Contrast] = field(default_factory=dict)
    withheld: str | None = None  # why no fit is given: its inputs do not differ significantly


@dataclass
class Analysis:
    rows: list[Row]
    baselines: dict[str, Baseline]  # baseline_key -> the baseline used
    series: list[Series] = field(default_factory=list)


def best_single_worker(results, source: str) -> dict[str, Baseline]:
    """The fastest verified 1-worker median per (layer, kernel, batch) among `results`."""
    best: dict[str, Baseline] = {}
    for r in results:
        c = r.config
        if c.workers == 1 and r.ok and r.median_ms > 0:
            k = key_of(c)
            if k not in best or r.median_ms < best[k].median_ms:
                best[k] = Baseline(r.median_ms, c, source)
    return best


def fastest(*sources: dict[str, Baseline]) -> dict[str, Baseline]:
    """Per baseline key, the fastest baseline of all the sources (the earlier on a tie)."""
    out: dict[str, Baseline] = {}
    for baselines in sources:
        for k, b in baselines.items():
            if k not in out or b.median_ms < out[k].median_ms:
                out[k] = b
    return out


def analyze(
    results,
    known: dict[str, Baseline] | None = None,
    source: str = "this sweep",
    noise_floor: float = NOISE_FLOOR,
) -> Analysis:
    """`known`: baselines from elsewhere (the machine's book, a snapshot's record); the
    faster of those and this set's own best 1-worker run is used. `noise_floor`: the
    smallest ratio that counts as a difference (significance.contrast)."""
    baselines = fastest(known or {}, best_single_worker(results, source))
    runs = runs_by_config(results)
    by_config = {k: pool(v) for k, v in runs.items()}  # a repeated configuration: pooled
    drift = {k: drift_of(v) for k, v in runs.items()}
    rows = []
    for r in results:
        twin_key = (*r.config.series_key(), 1)
        twin = by_config.get(twin_key)
        base = baselines.get(key_of(r.config))
        honest = base.median_ms if base else None
        apart = max(drift.get(twin_key, 1.0), drift[r.config.key()])
        rows.append(Row(r, run_stats(r, twin, honest, noise_floor, apart), base))
    groups: dict[tuple, dict[int, RunResult]] = {}
    drifts: dict[tuple, float] = {}
    for key, r in by_config.items():
        if r.ok:
            groups.setdefault(key[:-1], {})[key[-1]] = r
            drifts[key[:-1]] = max(drifts.get(key[:-1], 1.0), drift[key])
    series = [
        scaling(key, points, noise_floor, drifts[key])
        for key, points in groups.items()
        if len(points) >= 2
    ]
    return Analysis(rows, baselines, series)


def scaling(
    key: tuple, points: dict[int, RunResult], noise_floor: float = NOISE_FLOOR, drift: float = 1.0
) -> Series:
    """One configuration over worker counts. A fit of medians that do not differ says only
    what the noise did (a serial fraction of 200, or below 0): the Amdahl fit is given only
    when the fewest and the most workers differ significantly, and Karp-Flatt's e only at
    counts that differ significantly from one worker."""
    times = {p: points[p].median_ms for p in sorted(points)}
    first, last = min(times), max(times)
    contrasts = {
        p: contrast(points[first].times_ms, points[p].times_ms, noise_floor, drift=drift)
        for p in times
        if p != first
    }
    ends = contrasts[last]
    fit, withheld = None, None
    if ends.significant:
        fit = amdahl_fit(times)
    else:
        withheld = f"{first} vs {last} workers: {ends.text()}"
    kf = {}
    if first == 1:
        kf = {p: karp_flatt(times[1], times[p], p) for p, c in contrasts.items() if c.significant}
    return Series(key, times, fit, kf, contrasts, withheld)
