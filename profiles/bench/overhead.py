"""The fixed cost of one repeat: hand out W empty tasks, wait for all of them.

What an executor adds to every repeat whatever the work: waking the workers, handing
them their share, collecting what they return. Measured with tasks that do nothing,
so nothing hides it; a run's own figure (`run_overhead_us`) is its wall time minus
its busiest worker's tasks, repeat by repeat.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from partui.profiles.executors.registry import make_executor
from partui.profiles.run.repeats import timing_conditions

OVERHEAD_EXECUTORS = ("threads", "threads-dynamic", "native-region")
# what bench sets side by side: the interpreter's hand-out against one native region
SPLIT_EXECUTORS = ("threads", "native-region")


def _nothing(*_args):
    return []


def empty_repeats_us(executor: str, workers: int, repeats: int = 2000, warmup: int = 200):
    """Microseconds per repeat of `workers` empty tasks on a fresh `executor`, one figure per
    repeat (after `warmup` untimed ones); the pool's start-up is not counted."""
    ex = make_executor(executor, workers)
    try:
        ex.start()
        if hasattr(ex, "empty_repeat"):  # one native call per repeat

            def one():
                ex.empty_repeat()

        elif hasattr(ex, "run_shares"):
            shares = [[None]] * workers

            def one():
                ex.run_shares(_nothing, shares)

        else:

            def one():
                ex.wait([ex.submit(_nothing) for _ in range(workers)])

        out = []
        with timing_conditions(ex):  # the threads where a run's timed repeats have them
            for i in range(warmup + repeats):
                t0 = time.perf_counter_ns()
                one()
                if i >= warmup:
                    out.append((time.perf_counter_ns() - t0) / 1e3)
        return out
    finally:
        ex.close()


def summary(values_us: list[float]) -> dict:
    """median, quartiles and min-max of per-repeat figures, in microseconds."""
    q1, _, q3 = statistics.quantiles(values_us, n=4) if len(values_us) > 1 else [values_us[0]] * 3
    return {
        "median_us": statistics.median(values_us),
        "q1_us": q1,
        "q3_us": q3,
        "min_us": min(values_us),
        "max_us": max(values_us),
        "repeats": len(values_us),
    }


def repeat_busy_ns(times_ms: list[float], spans) -> list[list[int]]:
    """Per timed repeat, each worker's summed task time in ns (workers with no task left out)."""
    busy: dict[tuple[int, int], int] = {}
    for s in spans:
        if 0 <= s.repeat < len(times_ms):
            key = (s.repeat, s.worker)
            busy[key] = busy.get(key, 0) + s.end_ns - s.start_ns
    per: list[list[int]] = [[] for _ in times_ms]
    for (rep, _), ns in sorted(busy.items()):
        per[rep].append(ns)
    return per


def run_overhead_us(times_ms: list[float], spans) -> float | None:
    """Median over a run's timed repeats of (repeat wall - the busiest worker's summed task
    time), in microseconds: what handing out and collecting the tasks cost the run."""
    split = time_split(times_ms, spans)
    return split.fixed_us if split is not None else None


@dataclass(frozen=True)
class TimeSplit:
    """Where a W-worker repeat's wall time goes, medians over the run's repeats:
    wall = busiest worker's tasks + fixed cost; busiest = (all tasks' time / W) x imbalance.
    Against one worker's time T1: speedup = T1 / wall, and all tasks' time / T1 is the work
    the split added (smaller GEMMs, two cores sharing the memory system)."""

    wall_ms: float
    work_ms: float  # all workers' task time in one repeat
    busiest_ms: float
    imbalance: float  # busiest / mean over the workers that ran a task
    fixed_us: float  # wall - busiest


def time_split(times_ms: list[float], spans) -> TimeSplit | None:
    per = repeat_busy_ns(times_ms, spans)
    rows = [(t, ns) for t, ns in zip(times_ms, per) if ns]
    if not rows:
        return None
    med = statistics.median
    return TimeSplit(
        wall_ms=med(t for t, _ in rows),
        work_ms=med(sum(ns) / 1e6 for _, ns in rows),
        busiest_ms=med(max(ns) / 1e6 for _, ns in rows),
        imbalance=med(max(ns) * len(ns) / sum(ns) for _, ns in rows),
        fixed_us=med(t * 1e3 - max(ns) / 1e3 for t, ns in rows),
    )


def wake_us(spans) -> float | None:
    """Median wake-up latency ('go' to the first task's start) of the woken workers (not
    worker 0, the caller), in microseconds; None when the executor does not record it."""
    values = [s.wake_ns / 1e3 for s in spans if s.wake_ns >= 0 and s.worker > 0 and s.repeat >= 0]
    return statistics.median(values) if values else None
