"""The `native-region` executor: a whole repeat is one native call that runs the workers'
tasks in parallel on numba's thread pool (`parallel=True`, `prange` over the tasks), never
coming back to the interpreter in between.

Beside `threads` it shows what the interpreter costs a repeat: there, the caller hands each
parked thread its share, every worker takes the interpreter lock to start and stamp each
task, and the caller collects the results; here the caller makes one call and the pool's
threads (numba's threading layer) do the rest. Spans come from the native side: each task
stamps its start and end on the clock time.perf_counter_ns reads (kernels.runtime.
native_clock), with the pool thread that ran it (the caller is worker 0) and its native id;
`wake_ns` is from the call to a woken worker's start.

What it runs (kernels.plan.axes, REGION_KINDS and REGION_STRATEGIES): the vectorized
kernel's convolutions and the whole network, cut by `batch` or `none`, forward only.
"""

from __future__ import annotations

import threading
import time

from partui.kernels.forward import region_bind
from partui.kernels.runtime.numba_threads import pool_threads
from partui.kernels.runtime.scratch import Scratch
from partui.profiles.executors.base import Executor, WorkerIds
from partui.profiles.records.events import Span

NAME = "native-region"


class NativeRegionExecutor(Executor):
    """One native call per repeat; numba's pool threads are the workers."""

    name = NAME
    # the pool's threads may spin after a region: their CPU time is not the tasks' alone
    measures_task_cpu = False

    def __init__(self, workers: int):
        super().__init__(workers)
        self._scratch = Scratch()
        self._empty: region_bind.Region | None = None  # empty tasks (empty_repeat)
        self._tids: dict[int, int] = {}
        self._last: tuple = ()
        self._waiting: list = []  # calls whose spans are not made yet (collect_spans)

    @classmethod
    def refusal(cls, workers: int, scheduler: str = "") -> str | None:
        most = pool_threads()
        if workers > most:
            return (
                f"executor {NAME!r} runs at most {most} workers here: numba's thread pool has "
                f"{most} threads (NUMBA_NUM_THREADS)"
            )
        return None

    def start(self) -> float:
        import numba

        t0 = time.perf_counter_ns()
        numba.set_num_threads(self.workers)  # per calling thread: set where the runs are made
        return (time.perf_counter_ns() - t0) / 1e6

    def prepare_run(self) -> None:
        self._waiting = []  # a stopped run's calls: their spans belong to no run now

    def worker_ids(self) -> WorkerIds:
        ids: WorkerIds = dict(self._tids)
        ids[0] = threading.get_native_id()
        return ids

    def _bind(self, layer, kernel, arena, tasks):
        bound = None
        if kernel == "vectorized":
            bound = region_bind.bind(layer, arena.arrays, tasks, self._scratch)
        if bound is None:
            raise RuntimeError(
                f"executor {NAME!r} cannot run these tasks of {layer.name}: it runs "
                "whole samples of the vectorized conv layers and network, with numpy's "
                "BLAS reachable from native code"
            )
        return bound

    def run_phase(self, layer, kernel, arena, tasks, run, repeat, on_span=None):
        last = self._last  # (arrays, tasks, region, run): one binding at a time
        if last and last[0] is arena.arrays and last[1] is tasks:
            region, first = last[2], last[3] != run
        else:
            region, first = self._bind(layer, kernel, arena, tasks), True
        if first:
            import numba

            if numba.get_num_threads() != self.workers:
                numba.set_num_threads(self.workers)
            # A forward pass writes its weights once, before its first repeat: the packed
            # copy is checked against them on a run's first call only.
            self._last = (arena.arrays, tasks, region, run)
        go = time.perf_counter_ns()
        region.run(first)
        self._waiting.append((tasks, region.stamps.copy(), go, run, repeat))
        return []

    def collect_spans(self, spans: list[Span], on_span=None) -> list[Span]:
        """The spans of the calls made since the last collection, from their stamps: made
        after the repeat is timed, as the interpreter plays no part in the region itself."""
        for tasks, stamps, go, run, repeat in self._waiting:
            for i, task in enumerate(tasks):
                start, end, worker, tid = (int(v) for v in stamps[i, :4])
                if worker > 0:
                    self._tids[worker] = tid
                span = Span.of_task(
                    task, worker, tid, start, end, run, repeat, start - go if worker > 0 else -1
                )
                spans.append(span)
                if on_span:
                    on_span(span)
        self._waiting = []
        return spans

    def empty_repeat(self) -> None:
        """One repeat of `workers` empty tasks (bench's fixed cost of a repeat)."""
        import numba

        if numba.get_num_threads() != self.workers:
            numba.set_num_threads(self.workers)
        region = self._empty
        if region is None:
            region = self._empty = region_bind.empty(self.workers)
        region.run()

    def close(self) -> None:
        self._empty, self._last, self._waiting = None, (), []
        super().close()
