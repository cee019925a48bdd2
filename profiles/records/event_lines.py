"""The events of a run as JSON objects, one per line: the format of `partui run --stream`.

Version 1 (every object carries "v": 1 and "event"; README, "The event stream", lists every
field). The first line is a header ("event": "stream"); then, per run: run_started, the
spans and CPU samples of each repeat followed by its repeat_done, and one of run_done,
run_failed, run_cancelled. Times are perf_counter_ns (CLOCK_MONOTONIC), the clock of the
spans, the samples and the repeats alike, so a consumer can lay them on one time axis.
"""

from __future__ import annotations

from typing import Any

from partui.kernels.plan.pass_axes import phase_name
from partui.profiles.files.checked_json import json_safe
from partui.profiles.records.events import (
    CpuSample,
    RepeatDone,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
    SpanDone,
)

VERSION = 1
FORMAT = "partui-events"
# the run summary's fields, as RunResult names them
_RESULT_FIELDS = (
    "median_ms",
    "min_ms",
    "max_ms",
    "q1_ms",
    "q3_ms",
    "times_ms",
    "max_abs_error",
    "tolerance",
    "tasks",
    "flops",
    "worker_busy_ms",
    "on_cpu_ratio",
    "pool_startup_ms",
    "worker_cpus",
)


def header(command: str, version: str, cpus: int | None) -> dict[str, Any]:
    """The stream's first line: what it is, which partui wrote it, the clock of its times."""
    return {
        "v": VERSION,
        "event": "stream",
        "format": FORMAT,
        "command": command,
        "partui_version": version,
        "clock": "perf_counter_ns",
        "cpus": cpus,
    }


class EventLines:
    """Turns a run's events into version-1 line objects. Keeps what a later event needs of an
    earlier one: the run under way (CPU samples carry none) and its pass (phase names)."""

    def __init__(self) -> None:
        self.run = 0
        self._pass: dict[int, str] = {}

    def line(self, event) -> dict[str, Any] | None:
        """The line object of `event`, or None for an event the stream leaves out."""
        d = self._line(event)
        return None if d is None else json_safe({"v": VERSION, **d})

    def _line(self, ev) -> dict[str, Any] | None:
        if isinstance(ev, SpanDone):
            s = ev.span
            return {
                "event": "span",
                "run": s.run,
                "repeat": s.repeat,
                "worker": s.worker,
                "task": s.task,
                "phase": s.phase,
                "phase_name": phase_name(self._pass.get(s.run, "forward"), s.phase),
                "start_ns": s.start_ns,
                "end_ns": s.end_ns,
                "tid": s.tid,
                "units": s.units,
                "wake_ns": s.wake_ns,
            }
        if isinstance(ev, CpuSample):
            return {"event": "cpu_sample", "run": self.run, **ev.to_dict()}
        if isinstance(ev, RepeatDone):
            return {
                "event": "repeat_done",
                "run": ev.run,
                "repeat": ev.repeat,
                "warmup": ev.repeat < 0,
                "start_ns": ev.start_ns,
                "wall_ns": ev.wall_ns,
                "ms": ev.wall_ns / 1e6,
            }
        if isinstance(ev, RunStarted):
            self.run = ev.run
            self._pass[ev.run] = ev.config.pass_kind
            return {
                "event": "run_started",
                "run": ev.run,
                "label": ev.config.label(),
                "config": ev.config.to_dict(),
                "pool_startup_ms": ev.pool_startup_ms,
                "conditions": _conditions(ev.conditions),
            }
        if isinstance(ev, RunFinished) or (isinstance(ev, RunFailed) and ev.result is not None):
            return self._done(ev.run, ev.result, getattr(ev, "error", None))
        if isinstance(ev, RunFailed):
            return {"event": "run_failed", "run": ev.run, "error": ev.error}
        if isinstance(ev, RunCancelled):
            return {"event": "run_cancelled", "run": ev.run}
        return None

    def _done(self, run: int, r, error: str | None) -> dict[str, Any]:
        """A verified run's summary (ok false: the result is wrong, `error` says how)."""
        return {
            "event": "run_done",
            "run": run,
            "ok": bool(r.ok),
            "error": error,
            "repeats": len(r.times_ms),
            **{name: getattr(r, name) for name in _RESULT_FIELDS},
            "gflops": r.gflops,
            "conditions": _conditions(r.conditions),
        }


def _conditions(c) -> dict[str, Any] | None:
    return None if c is None else c.to_dict()
