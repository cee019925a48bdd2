"""The result of one run: its configuration, times, spans and CPU samples, and its JSON form
(what a snapshot keeps)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from partui.profiles.records.config import RunConfig
from partui.profiles.records.events import CpuSample, Span
from partui.profiles.system.conditions import Conditions

if TYPE_CHECKING:
    import numpy as np


def timing(times_ms: list[float]) -> dict[str, Any]:
    """The RunResult fields of a run's timed repeats: the times, their median, min-max and
    quartiles (ms)."""
    from partui.profiles.records.stats import summarize

    s = summarize(times_ms)
    return {
        "times_ms": times_ms,
        "median_ms": s.median,
        "min_ms": s.min,
        "max_ms": s.max,
        "q1_ms": s.q1,
        "q3_ms": s.q3,
    }


# the configuration's fields a run's JSON (and the CSV export) also has at the top level
CONFIG_SUMMARY = ("layer", "strategy", "kernel", "executor", "workers", "batch")


@dataclass
class RunResult:
    config: RunConfig
    blas_threads: int
    times_ms: list[float]
    median_ms: float
    min_ms: float
    max_ms: float
    q1_ms: float
    q3_ms: float
    max_abs_error: float
    tolerance: float
    ok: bool
    tasks: int
    flops: int
    spans: list[Span]
    worker_busy_ms: list[float]  # per worker: median over repeats of its summed task time
    pool_startup_ms: float
    error: str | None = None
    arrays: dict[str, np.ndarray] | None = field(default=None, repr=False)  # kept on request
    # per worker: CPU time / busy wall time over the timed repeats (NaN: not measured)
    on_cpu_ratio: list[float] = field(default_factory=list)
    cpu_samples: list[CpuSample] = field(default_factory=list, repr=False)
    # per timed repeat: its start on the spans' clock (perf_counter_ns); the timeline spans
    # start .. start + wall, so the hand-out before the first task and the collection after
    # the last show as idle time
    repeat_start_ns: list[int] = field(default_factory=list)
    # executor dask: where it ran, clock offsets, bytes moved, time per task phase, notes
    dask: dict[str, Any] | None = None
    # the CPU each worker was pinned to (the `threads` executor), else empty: left to the
    # scheduler
    worker_cpus: list[int] = field(default_factory=list)
    # what the machine was like: governor, turbo, load, other programs' CPU during the run
    # (None: not read, as in snapshots made before it was)
    conditions: Conditions | None = None

    @property
    def gflops(self) -> float:
        return self.flops / (self.median_ms * 1e6) if self.median_ms > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "arrays"}
        d["config"] = self.config.to_dict()
        d["spans"] = [s.to_dict() for s in self.spans]
        d["cpu_samples"] = [s.to_dict() for s in self.cpu_samples]
        d["conditions"] = self.conditions.to_dict() if self.conditions is not None else None
        d.update({k: d["config"][k] for k in CONFIG_SUMMARY})
        d["gflops"] = self.gflops
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunResult:
        """Rebuild a result from `to_dict()` output (derived keys are ignored)."""
        names = {f.name for f in fields(cls)} - {"arrays"}
        values = {k: v for k, v in d.items() if k in names}
        values["config"] = RunConfig.from_dict(d["config"])
        values["spans"] = [Span(**s) for s in d.get("spans", [])]
        values["cpu_samples"] = [CpuSample.from_dict(s) for s in d.get("cpu_samples", [])]
        # JSON has no NaN / inf: snapshots store them as null
        values["on_cpu_ratio"] = [
            float("nan") if v is None else v for v in d.get("on_cpu_ratio", [])
        ]
        if d.get("conditions") is not None:
            values["conditions"] = Conditions.from_dict(d["conditions"])
        if values.get("max_abs_error") is None:
            values["max_abs_error"] = float("inf")
        return cls(**values)
