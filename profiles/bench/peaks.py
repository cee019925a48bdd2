"""The GEMM peak a bench's shares are read against, and whether it could be measured now.

A peak is the practical limit only if it was measured when the cores were free: another
program running at the same time lowers it, and a share of a lowered peak overstates the
kernels (a busy machine once gave 10.9 GFLOP/s at 2 threads against 94.8 at 1, and conv2 read
as 698% of it). So the thread counts are measured in interleaved rounds (a change of load
hits them alike) and each peak is the median of its rounds; then

- a peak lower at N threads than at 1, whose rounds disagree by more than SPREAD_LIMIT (the
  fastest over the slowest), or below a figure the bench measured against it, is measured
  again (`retries` times);
- if that persists, the peak is marked not measurable now: it is kept with its reason, and
  no share of it is given.

The measuring function is a parameter, so tests can hand in the figures a busy machine gives.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

from partui.profiles.records.stats import summarize
from partui.profiles.system import blas

SPREAD_LIMIT = 2.0  # rounds of one peak further apart than this: the cores were not free
# (threads, size, repeats) -> {"gflops": median, "best_gflops": ..., "median_ms": ...}
Measure = Callable[[int, int, int], dict]


def gemm_peak(threads: int, size: int, repeats: int) -> dict:
    """float32 (size x size) @ (size x size) with BLAS at `threads` threads: GFLOP/s over
    repeats."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    c = np.empty((size, size), dtype=np.float32)
    flops = 2 * size**3
    times = []
    with blas.limit(threads):
        np.matmul(a, b, out=c)  # warm-up: BLAS threads started, pages touched
        for _ in range(repeats):
            t0 = time.perf_counter_ns()
            np.matmul(a, b, out=c)
            times.append((time.perf_counter_ns() - t0) / 1e6)
    s = summarize(times)
    return {
        "threads": threads,
        "size": size,
        "repeats": repeats,
        "median_ms": s.median,
        "gflops": flops / (s.median * 1e6),
        "best_gflops": flops / (s.min * 1e6),
        "slowest_ms": s.max,
    }


class Peaks:
    """Per thread count, the GEMM peak from interleaved rounds, its checks and its verdict.

    `peaks[str(t)]` is a dict: gflops (median of the rounds' medians), best_gflops, median_ms,
    size, repeats (per round), rounds, round_gflops (each round's), attempts, measurable, and
    problem (why not, or None).
    """

    def __init__(
        self,
        threads: tuple[int, ...],
        size: int,
        repeats: int,
        rounds: int,
        measure: Measure = gemm_peak,
        retries: int = 2,
        progress: Callable[[str], None] | None = None,
    ):
        self.threads = tuple(sorted(threads))
        self.size, self.repeats, self.rounds = size, repeats, max(1, rounds)
        self.measure, self.retries = measure, retries
        self.progress = progress or (lambda text: None)
        self.peaks: dict[str, dict] = {}

    # -- measuring ------------------------------------------------------------------
    def _rounds(self, threads: tuple[int, ...]) -> dict[str, dict]:
        got: dict[int, list[dict]] = {t: [] for t in threads}
        for _ in range(self.rounds):
            for t in threads:
                got[t].append(self.measure(t, self.size, self.repeats))
        out = {}
        for t, figures in got.items():
            rates = [f["gflops"] for f in figures]
            med = statistics.median(rates)
            out[str(t)] = {
                "threads": t,
                "size": self.size,
                "repeats": self.repeats,
                "rounds": len(rates),
                "gflops": med,
                "best_gflops": max(f.get("best_gflops", f["gflops"]) for f in figures),
                "median_ms": 2 * self.size**3 / (med * 1e6) if med > 0 else float("inf"),
                "round_gflops": rates,
                "attempts": 1,
                "measurable": med > 0,
                "problem": None if med > 0 else "no GEMM throughput measured",
            }
        return out

    def measure_all(self) -> dict[str, dict]:
        """Every thread count in interleaved rounds; a peak lower at N threads than at 1, or
        whose rounds disagree by more than SPREAD_LIMIT, is measured again, and marked not
        measurable if it stays so."""
        self.progress(
            f"GEMM peak, {', '.join(map(str, self.threads))} threads interleaved, "
            f"{self.size}^3 x {self.repeats} x {self.rounds} rounds"
        )
        self.peaks = self._rounds(self.threads)
        for attempt in range(self.retries + 1):
            low = self._below_one_thread()
            wide = [t for t in self._spread_out() if t not in low]
            if not low and not wide:
                break
            if attempt == self.retries:
                one = self.peaks["1"]["gflops"]
                for t in low:
                    p = self.peaks[t]
                    p["measurable"] = False
                    p["problem"] = (
                        f"{p['gflops']:.1f} GFLOP/s at {t} threads, below {one:.1f} at 1 "
                        f"thread in {p['attempts']} attempts: another program held the "
                        "cores; not measurable now"
                    )
                for t in wide:
                    p = self.peaks[t]
                    p["measurable"] = False
                    p["problem"] = (
                        f"its rounds ranged from {min(p['round_gflops']):.1f} to "
                        f"{max(p['round_gflops']):.1f} GFLOP/s in {p['attempts']} attempts: "
                        "another program held the cores; not measurable now"
                    )
                break
            self.progress(
                f"GEMM peak at {', '.join(low + wide)} threads below 1 thread or its rounds "
                "far apart: measuring again"
            )
            again = self._rounds(tuple(sorted({1, *(int(t) for t in low + wide)})))
            for t, p in again.items():
                p["attempts"] = self.peaks[t]["attempts"] + 1
                self.peaks[t] = p
        return self.peaks

    def _spread_out(self) -> list[str]:
        """Thread counts whose rounds' fastest is over SPREAD_LIMIT times their slowest."""
        return [
            t
            for t, p in self.peaks.items()
            if p["measurable"]
            and min(p["round_gflops"]) > 0
            and max(p["round_gflops"]) > SPREAD_LIMIT * min(p["round_gflops"])
        ]

    def _below_one_thread(self) -> list[str]:
        one = self.peaks.get("1")
        if one is None:
            return []
        return [
            t
            for t, p in self.peaks.items()
            if int(t) > 1 and p["measurable"] and p["gflops"] < one["gflops"]
        ]

    # -- reading figures against them ----------------------------------------------
    def key_for(self, workers: int) -> str:
        """The peak a figure on `workers` workers is read against: that thread count's, else
        the largest measured."""
        return str(workers) if str(workers) in self.peaks else max(self.peaks, key=int)

    def share(self, gflops: float, workers: int) -> float | None:
        """gflops over the peak for `workers`, or None when that peak is not measurable."""
        p = self.peaks[self.key_for(workers)]
        if not p["measurable"] or p["gflops"] <= 0:
            return None
        return gflops / p["gflops"]

    def check_figure(self, gflops: float, workers: int, what: str) -> None:
        """A figure above its peak: the peak is measured again (with 1 thread, in rounds); if
        the figure still exceeds it, the peak is marked not measurable now."""
        key = self.key_for(workers)
        for _ in range(self.retries):
            p = self.peaks[key]
            if not p["measurable"] or gflops <= p["gflops"]:
                return
            self.progress(
                f"{what} measured {gflops:.1f} GFLOP/s, above the {key}-thread GEMM peak "
                f"{p['gflops']:.1f}: measuring the peak again"
            )
            again = self._rounds(tuple(sorted({1, int(key)})))
            for t, q in again.items():
                q["attempts"] = self.peaks[t]["attempts"] + 1
                self.peaks[t] = q
            for t in self._below_one_thread():
                self.peaks[t]["measurable"] = False
                self.peaks[t]["problem"] = (
                    f"{self.peaks[t]['gflops']:.1f} GFLOP/s at {t} threads, below 1 thread "
                    "when measured again: not measurable now"
                )
        p = self.peaks[key]
        if p["measurable"] and gflops > p["gflops"]:
            p["measurable"] = False
            p["problem"] = (
                f"{what} ran at {gflops:.1f} GFLOP/s, above this peak ({p['gflops']:.1f}) in "
                f"{p['attempts']} attempts: the peak was measured while the cores were busy; "
                "not measurable now"
            )
