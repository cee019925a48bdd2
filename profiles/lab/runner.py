"""The memory lab: experiments on this machine's caches, run headless or in the dashboard.

    EXPERIMENTS                      name -> one-line description
    GROUPS, EXPERIMENT_GROUP         the groups (CPU core, memory, threads); name -> group
    memory_need(name, quick)         bytes the experiment allocates (at most 512 MiB)
    run_experiment(name, emit, cancel, quick) -> ExperimentResult

`emit(point)` is called with each MemPoint as soon as it is measured (from the calling thread).
Setting `cancel` (a threading.Event) stops the run within a fraction of a second: it then
returns the points measured so far with `cancelled=True` and no summary. Ctrl+C (a
KeyboardInterrupt in the calling thread) stops the worker threads and propagates.

numba is imported when an experiment first runs, not when this module is imported.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from partui.kernels.runtime.scratch import Cancelled
from partui.profiles.lab.experiments import GROUPS, SPECS
from partui.profiles.lab.measure import Comparison, ExperimentResult, Lab, MemPoint, compare
from partui.profiles.system import machine as machine_info

__all__ = [
    "EXPERIMENTS",
    "GROUPS",
    "EXPERIMENT_GROUP",
    "MAX_MEMORY",
    "ExperimentResult",
    "MemPoint",
    "MemoryShort",
    "UnknownExperiment",
    "Comparison",
    "compare",
    "check_memory",
    "memory_need",
    "run_experiment",
    "machine_facts",
]

EXPERIMENTS: dict[str, str] = {name: spec.description for name, spec in SPECS.items()}
EXPERIMENT_GROUP: dict[str, str] = {name: spec.group for name, spec in SPECS.items()}
MAX_MEMORY = 512 * 1024**2
SPARE_MEMORY = 256 * 1024**2  # left free for everything else on the machine


class UnknownExperiment(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown experiment {name!r}; choose one of: {', '.join(EXPERIMENTS)}")


class MemoryShort(RuntimeError):
    """Not enough free memory for the experiment: refused before allocating anything."""


def _spec(name: str):
    try:
        return SPECS[name]
    except KeyError:
        raise UnknownExperiment(name) from None


def usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def machine_facts() -> dict[str, Any]:
    """What the experiments need to know about this machine (and what their results keep)."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "l1": machine_info.cache_size(1),
        "l2": machine_info.cache_size(2),
        "l3": machine_info.cache_size(3),
        "line": machine_info.line_size(),
        "cores": usable_cores(),
        "cpu_model": machine_info.cpu_model(),
        "load_average_1min": load,
    }


def _plan(name: str, quick: bool, params: dict | None = None) -> dict:
    spec = _spec(name)
    plan = spec.plan(quick, usable_cores()) if spec.uses_cores else spec.plan(quick)
    if params:
        unknown = set(params) - set(plan)
        if unknown:
            raise ValueError(f"{name}: unknown parameter(s) {', '.join(sorted(unknown))}")
        plan.update(params)
    return plan


def memory_need(name: str, quick: bool = False, params: dict | None = None) -> int:
    """Bytes the experiment allocates for its arrays (the largest working set)."""
    return _spec(name).need(_plan(name, quick, params))


def _memory_room():
    """The room left under the tightest limit: system memory, ulimit -v, cgroup memory.max."""
    from partui.profiles.system.memory_limits import memory_room

    return memory_room()


def check_memory(name: str, quick: bool = False, params: dict | None = None) -> int:
    """The memory need, or MemoryShort with a message saying what is needed and what is free."""
    need = memory_need(name, quick, params)
    if need > MAX_MEMORY:
        raise MemoryShort(
            f"{name} would need {need / 2**20:.0f} MiB, more than the memory "
            f"lab's limit of {MAX_MEMORY / 2**20:.0f} MiB"
        )
    room = _memory_room()
    if room.bytes < need + SPARE_MEMORY:
        hint = ""
        if not quick and memory_need(name, True) < need:
            hint = f"; --quick needs {memory_need(name, True) / 2**20:.0f} MiB"
        raise MemoryShort(
            f"{name} needs {need / 2**20:.0f} MiB of memory plus "
            f"{SPARE_MEMORY / 2**20:.0f} MiB to spare, and only "
            f"{room.bytes / 2**20:.0f} MiB is left under {room.limit}{hint}"
        )
    return need


def run_experiment(
    name: str,
    emit: Callable[[MemPoint], Any] | None = None,
    cancel: threading.Event | None = None,
    quick: bool = False,
    params: dict | None = None,
) -> ExperimentResult:
    """Run one experiment. Raises UnknownExperiment, MemoryShort (before allocating), or an
    error of a kernel; returns a result with `cancelled=True` when `cancel` was set.
    `params` overrides the plan (sizes, repeats): for tests and for the curious."""
    spec = _spec(name)
    plan = _plan(name, quick, params)
    need = check_memory(name, quick, params)
    lab = Lab(
        name,
        emit,
        cancel if cancel is not None else threading.Event(),
        quick,
        plan,
        machine_facts(),
    )
    started, t0 = time.time(), time.perf_counter()
    try:
        summary = spec.run(lab, plan)
        cancelled = False
    except Cancelled:
        summary, cancelled = {}, True
    if cancelled:
        explanation = (
            f"{name} stopped after {len(lab.points)} point{'' if len(lab.points) == 1 else 's'}."
        )
    else:
        explanation = spec.explain(summary, lab)
    return ExperimentResult(
        experiment=name,
        points=lab.points,
        summary=summary,
        explanation=explanation,
        markers=[(float(x), label) for x, label in spec.markers(lab, summary)],
        quick=quick,
        cancelled=cancelled,
        params=plan,
        machine=lab.machine,
        memory_need=need,
        started=started,
        duration_s=time.perf_counter() - t0,
    )
