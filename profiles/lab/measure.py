"""Measuring for the memory lab: points with their repeats, results, parallel timing, verdicts.

Work is always run on worker threads (never on the caller's thread), started together at a
barrier, each stamping its own wall and CPU time: the caller stays free to notice Ctrl+C or a
cancel event, and a thread's CPU time against the wall time shows whether it really ran the
whole time or was pushed off its core (by another program, or by waiting for the GIL).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, TypeVar

from partui.kernels.runtime.scratch import Cancelled
from partui.profiles.records.stats import summarize

K = TypeVar("K")  # a series' key: its name, or (kind, name)

RESULT_KIND = "partui-memlab"
RESULT_VERSION = 1
WAIT_SLICE_S = 0.05  # how often the caller looks at the cancel event while threads work
RETAKES = 4  # a sample disturbed by another program is retaken at most this many times
RETAKE_PAUSE_S = 0.03


@dataclass
class MemPoint:
    """One measured point: the samples of `repeats` runs and their median and min-max."""

    experiment: str
    series: str
    x: float
    x_label: str
    y_label: str
    samples: list[float]
    median: float
    min: float
    max: float
    # Mean over the worker threads of (thread CPU time / wall time), the median over samples:
    # 1.0 when every thread ran the whole time, lower when threads waited for a core or the GIL.
    cpu_share: float | None = None

    @classmethod
    def of(
        cls,
        experiment: str,
        series: str,
        x: float,
        x_label: str,
        y_label: str,
        samples: list[float],
        cpu_shares: list[float] | None = None,
    ) -> MemPoint:
        s = summarize(samples)
        share = summarize(cpu_shares).median if cpu_shares else None
        return cls(
            experiment,
            series,
            float(x),
            x_label,
            y_label,
            [float(v) for v in samples],
            s.median,
            s.min,
            s.max,
            share,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MemPoint:
        return cls(**_pick(cls, d, "point"))


@dataclass
class ExperimentResult:
    """An experiment's points, its summary figures, the text that explains them, chart markers."""

    experiment: str
    points: list[MemPoint]
    summary: dict[str, Any]
    explanation: str
    markers: list[tuple[float, str]]  # (x, label): cache sizes, the line size
    quick: bool = False
    cancelled: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)
    memory_need: int = 0
    started: float = 0.0  # time.time()
    duration_s: float = 0.0

    def series(self, name: str) -> list[MemPoint]:
        return [p for p in self.points if p.series == name]

    def point(self, series: str, x: float) -> MemPoint | None:
        for p in self.points:
            if p.series == series and p.x == x:
                return p
        return None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["markers"] = [[x, label] for x, label in self.markers]
        return {"kind": RESULT_KIND, "version": RESULT_VERSION, **d}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExperimentResult:
        if not isinstance(d, dict) or d.get("kind") != RESULT_KIND:
            raise ValueError(f"not a memory-lab result (kind should be {RESULT_KIND!r})")
        if d.get("version") != RESULT_VERSION:
            raise ValueError(
                f"memory-lab result version {d.get('version')!r} is not {RESULT_VERSION}"
            )
        values = _pick(cls, d, "memory-lab result")
        try:
            values["points"] = [MemPoint.from_dict(p) for p in values["points"]]
            values["markers"] = [(float(x), str(label)) for x, label in values["markers"]]
        except (TypeError, ValueError) as exc:
            raise ValueError(f"memory-lab result: bad points or markers ({exc})") from None
        return cls(**values)


def _pick(cls, d: dict, what: str) -> dict:
    """The fields of dataclass `cls` found in `d`; ValueError naming the required ones missing."""
    if not isinstance(d, dict):
        raise ValueError(f"{what}: expected an object, got {type(d).__name__}")
    names = [f.name for f in fields(cls)]
    required = [
        f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING
    ]
    missing = [n for n in required if n not in d]
    if missing:
        raise ValueError(f"{what}: missing {', '.join(missing)}")
    return {n: d[n] for n in names if n in d}


# ---- verdicts ---------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """`a` against `b`: the ratio of medians and whether the spreads (min-max) overlap."""

    ratio: float  # a.median / b.median
    separated: bool  # the min-max ranges do not overlap
    text: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare(a: MemPoint, b: MemPoint, higher_is_better: bool = False) -> Comparison:
    """'N.Nx slower/faster' only where the spreads do not overlap; otherwise say so.

    The lab's plans take 3 to 9 samples a point, too few for `significance.contrast` (which
    the run comparisons use); disjoint min-max ranges are the lab's stricter stand-in.

    y values are costs (time per element) unless `higher_is_better` (bandwidth)."""
    ratio = a.median / b.median if b.median else float("inf")
    if not (a.max < b.min or a.min > b.max):
        return Comparison(ratio, False, f"no clear difference ({ratio:.2f}x, spreads overlap)")
    worse = (a.min > b.max) != higher_is_better
    factor = ratio if ratio >= 1 else 1 / ratio
    return Comparison(ratio, True, f"{factor:.1f}x {'slower' if worse else 'faster'}")


# ---- timing threads ---------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    wall_ns: int  # from the first thread's start to the last thread's end
    cpu_ns: int  # CPU time of the threads, summed: time they actually ran on a core
    cpu_share: float  # cpu_ns / (wall_ns * threads): 1.0 when no thread ever waited


def run_parallel(jobs: list[list[Callable[[], Any]]], cancel: threading.Event) -> Sample:
    """Run job k (a list of chunks, called in order) on thread k, all starting together.

    Threads look at `cancel` between chunks (keep chunks short); the caller looks at it every
    WAIT_SLICE_S. Raises Cancelled when it was set, and re-raises an error of a job. On
    KeyboardInterrupt in the caller, the threads are stopped and joined before it goes on."""
    n = len(jobs)
    barrier = threading.Barrier(n)
    stop = threading.Event()
    stamps: list[tuple[int, int, int] | None] = [None] * n
    errors: list[BaseException] = []

    def body(k: int) -> None:
        try:
            barrier.wait()
            c0 = time.thread_time_ns()
            t0 = time.perf_counter_ns()
            for chunk in jobs[k]:
                if stop.is_set() or cancel.is_set():
                    stop.set()
                    return
                chunk()
            stamps[k] = (t0, time.perf_counter_ns(), time.thread_time_ns() - c0)
        except threading.BrokenBarrierError:
            return
        except BaseException as exc:  # handed to the caller
            errors.append(exc)
            stop.set()
            barrier.abort()

    threads = [
        threading.Thread(target=body, args=(k,), name=f"memlab-{k}", daemon=True) for k in range(n)
    ]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(WAIT_SLICE_S)
                if cancel.is_set():
                    stop.set()
    except BaseException:
        stop.set()
        barrier.abort()
        for t in threads:
            t.join()
        raise
    if errors:
        raise errors[0]
    done = [s for s in stamps if s is not None]
    if cancel.is_set() or stop.is_set() or len(done) < len(stamps):
        raise Cancelled()
    start = min(s[0] for s in done)
    wall = max(1, max(s[1] for s in done) - start)
    cpu = sum(s[2] for s in done)
    return Sample(wall, cpu, cpu / (wall * n))


def split_calls(total: int, per_call: int) -> list[int]:
    """`total` units as a list of calls of at most `per_call` units each."""
    per_call = max(1, per_call)
    full, rest = divmod(total, per_call)
    return [per_call] * full + ([rest] if rest else [])


# ---- one experiment's run ---------------------------------------------------


class Lab:
    """What an experiment measures with: the cancel event, the points so far, `emit`."""

    def __init__(
        self,
        experiment: str,
        emit: Callable[[MemPoint], Any] | None,
        cancel: threading.Event,
        quick: bool,
        params: dict,
        machine: dict,
    ) -> None:
        self.experiment = experiment
        self.emit = emit
        self.cancel = cancel
        self.quick = quick
        self.params = params
        self.machine = machine
        self.points: list[MemPoint] = []
        self.retaken = 0
        self.disturbed = 0

    def check(self) -> None:
        if self.cancel.is_set():
            raise Cancelled()

    def sample(
        self,
        jobs: list[list[Callable[[], Any]]],
        min_share: float | None = None,
        reset: Callable[[], Any] | None = None,
    ) -> Sample:
        """One timed run of `jobs`. With `min_share`, a run in which the threads were off
        their cores for longer than that allows (another program took a core) is retaken,
        up to RETAKES times after a short pause; `reset` runs before each retake. Retaken and
        still-disturbed samples are counted (`retaken`, `disturbed`) for the summary."""
        for attempt in range(RETAKES + 1):
            self.check()
            if attempt and reset is not None:
                reset()
            s = run_parallel(jobs, self.cancel)
            if min_share is None or s.cpu_share >= min_share:
                return s
            if attempt < RETAKES:
                self.retaken += 1
                self.cancel.wait(RETAKE_PAUSE_S)
        self.disturbed += 1
        return s

    def counts(self) -> dict[str, int]:
        return {"samples_retaken": self.retaken, "samples_disturbed": self.disturbed}

    def add(
        self,
        series: str,
        x: float,
        x_label: str,
        y_label: str,
        samples: list[float],
        cpu_shares: list[float] | None = None,
    ) -> MemPoint:
        point = MemPoint.of(self.experiment, series, x, x_label, y_label, samples, cpu_shares)
        self.points.append(point)
        if self.emit is not None:
            self.emit(point)
        return point

    def interleaved(
        self,
        jobs: dict[K, list[list[Callable[[], Any]]]],
        repeats: int,
        before: Callable[[K], Any] | None = None,
        after: Callable[[K], Any] | None = None,
        min_share: dict[K, float] | None = None,
    ) -> dict[K, list[Sample]]:
        """`repeats` samples of each series, taken in turns (a, b, c, a, b, c, ...) so that
        a change of load on the machine hits every series alike. `before(name)` and
        `after(name)` run untimed around each sample (to reset and check what it changes);
        `min_share[name]` retakes that series' disturbed samples (see `sample`)."""
        out: dict[K, list[Sample]] = {name: [] for name in jobs}
        for _ in range(repeats):
            for name, job in jobs.items():
                reset = (lambda name=name: before(name)) if before is not None else None
                if reset is not None:
                    reset()
                out[name].append(self.sample(job, (min_share or {}).get(name), reset))
                if after is not None:
                    after(name)
        return out
