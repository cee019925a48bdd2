"""The `threads` executor: one parked thread per worker, task i on worker i.

A pool that hands tasks out dynamically (`threads-dynamic`) costs a future, a queue
hand-off and a wake-up per task, and on a loaded machine one of its threads may run
every task of a "2-worker" repeat while the other never wakes. Here each worker has
its own queue: a repeat's tasks are cut into one contiguous share per worker (as the
strategy cut them), the parked threads are woken together, the calling thread runs
share 0 itself (one thread fewer to wake; it sleeps only if its share ends first), and
the results come back in per-worker slots: no future per task.

What is left of the cost (tests/benchmarks/bench_overhead.py --executors): one futex wake
per woken worker and one for the caller. A task holds the interpreter lock only to start and
stamp its bound call (compute.bound_call). Workers and caller sleep rather than spin on a
flag: spinning costs more than the wake-up it saves, on a busy machine far more
(docs/PERFORMANCE.md).

With no more workers than CPUs, each worker thread is pinned to a CPU of its own, and the
caller to worker 0's for a run's timed repeats (`placed`): see `cpu_placement` for why.

Each span records its wake-up latency (`Span.wake_ns`): from the moment the caller
said "go" to the start of the worker's first task of the phase.

`submit()` (pipelines, backward and training passes) queues a job on the worker with
the fewest jobs waiting; worker 0 then has a thread of its own, parked the rest of
the time, so its CPU time is counted for worker 0 together with the caller's.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from concurrent.futures import Future

from partui.kernels.runtime.scratch import Cancelled
from partui.profiles.executors import worker
from partui.profiles.executors.base import SETTLE_S, WAIT_SLICE_S, WorkerIds
from partui.profiles.executors.pool import ThreadExecutor
from partui.profiles.records.events import Span

_STOP = object()
PIN_ENV = "PARTUI_PIN_THREADS"  # "0": leave every thread where the scheduler puts it


def cpu_placement(workers: int) -> list[int] | None:
    """A CPU of its own for each worker, the CPUs this process may use in order; None when
    there are more workers than CPUs, one worker, no affinity calls, or PARTUI_PIN_THREADS=0.

    Why: woken by the caller's "go", a worker is placed on the caller's own CPU as often as
    on the idle one (the kernel favours the waker's CPU), and the two then share one CPU for
    tens of milliseconds while the other idles (conv3 batch 16: the caller's half took 470
    us instead of 230, its thread off the CPU half the time)."""
    if os.environ.get(PIN_ENV, "1") == "0" or not hasattr(os, "sched_setaffinity"):
        return None
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except OSError:
        return None
    return allowed[:workers] if 2 <= workers <= len(allowed) else None


def _pin(cpu: int | None) -> None:
    """This thread on `cpu` only (None: left alone); a refusal leaves it where it was."""
    if cpu is None:
        return
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {cpu})


class _Slot:
    """One worker's thread, its queue of jobs, and where its results are left."""

    def __init__(self, index: int, tids: dict, cpu: int | None = None):
        self.index = index
        self.cpu = cpu
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.pending = 0  # submitted jobs not yet finished (read by submit to balance)
        self.done = threading.Lock()
        self.done.acquire()  # released by the thread when a share is finished
        self.ready = threading.Event()
        self.thread = threading.Thread(
            target=self._loop, args=(tids,), name=f"partui-worker-{index}", daemon=True
        )
        self.thread.start()

    def _loop(self, tids: dict) -> None:
        worker.thread_init(iter([self.index]), tids)
        _pin(self.cpu)
        self.ready.set()
        while True:
            job = self.jobs.get()
            if job is _STOP:
                return
            job()


class ParkedThreadExecutor(ThreadExecutor):
    """Threads parked on their own queues between repeats; the caller is worker 0."""

    name = "threads"
    runs_jobs_together = True
    runs_shares = True

    def __init__(self, workers: int):
        super().__init__(workers)
        self._slots: list[_Slot] = []
        self._lock = threading.Lock()  # submit() may be called from several threads
        self.cpus: list[int] | None = None  # the CPU of each worker, when pinned

    def worker_ids(self) -> WorkerIds:
        """Worker 0 is the calling thread (run_phase) and its own thread (submit)."""
        ids: WorkerIds = dict(self._tids)
        if 0 in ids:
            ids[0] = (threading.get_native_id(), self._tids[0])
        else:
            ids[0] = threading.get_native_id()
        return ids

    def start(self) -> float:
        if self._slots:
            return 0.0
        t0 = time.perf_counter_ns()
        self._tids = {}
        slots = []
        self.cpus = cpu_placement(self.workers)
        try:
            for i in range(self.workers):
                slots.append(_Slot(i, self._tids, self.cpus[i] if self.cpus else None))
            for slot in slots:
                while not slot.ready.wait(WAIT_SLICE_S):
                    pass
        except BaseException:  # Ctrl+C while starting: no thread left behind
            for slot in slots:
                slot.jobs.put(_STOP)
            for slot in slots:
                slot.thread.join()
            raise
        self._slots = slots
        self.startup_ms = (time.perf_counter_ns() - t0) / 1e6
        return self.startup_ms

    @property
    def worker_cpus(self) -> list[int]:
        return list(self.cpus or [])

    @contextlib.contextmanager
    def placed(self):
        """The calling thread (worker 0) on worker 0's CPU for the run's timed repeats, then
        back where it may run."""
        self.start()
        before = None
        if self.cpus:
            with contextlib.suppress(OSError):
                before = os.sched_getaffinity(0)
                os.sched_setaffinity(0, {self.cpus[0]})
        try:
            yield
        finally:
            if before is not None:
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(0, before)

    # -- run_phase: one share per worker ---------------------------------------------
    def run_phase(self, layer, kernel, arena, tasks, run, repeat, on_span=None):
        cancel = self.cancel_event

        def run_share(share, index, go):
            return _run_share(layer, kernel, arena.arrays, share, cancel, run, repeat, go, index)

        spans = self.run_shares(run_share, _shares(tasks, self.workers))
        if on_span:
            for span in spans:
                on_span(span)
        return spans

    def run_shares(self, fn, shares: list) -> list:
        """fn(shares[w], w, go_ns) on worker w (the calling thread for w = 0), for every
        non-empty share, all at once; returns the lists they return, joined in worker order.

        The first error (an error rather than the stop it caused elsewhere) is raised once
        every worker has stopped; the others stop at their next check of the cancel event.
        """
        self.start()
        cancel = self.cancel_event
        results: list[list] = [[] for _ in shares]
        errors: list[BaseException | None] = [None] * len(shares)

        def share_job(w: int, go: int) -> None:
            try:
                results[w] = fn(shares[w], None, go)
            except BaseException as exc:  # handed to the caller, which raises it
                errors[w] = exc
                cancel.set()  # the other workers stop at their next check
            self._slots[w].done.release()

        busy = [w for w in range(1, len(shares)) if shares[w]]
        slots = self._slots
        go = time.perf_counter_ns()
        for w in busy:
            slots[w].jobs.put(lambda w=w: share_job(w, go))
        try:
            if shares[0]:
                results[0] = fn(shares[0], 0, go)
        except BaseException as exc:
            cancel.set()
            errors[0] = exc
        for w in busy:
            if not _acquire(slots[w].done, SETTLE_S if errors[0] is not None else None):
                self._abandon()  # a worker that does not stop in time: the next run gets
                break  # fresh threads (a late one must never release a later repeat's lock)
        real = [e for e in errors if e is not None and not isinstance(e, Cancelled)]
        first = real[0] if real else next((e for e in errors if e is not None), None)
        if first is None:
            return [item for got in results for item in got]
        try:
            raise first
        finally:
            # The error's traceback holds this frame and share_job's, which hold these
            # lists, which hold the error: a cycle that would keep the run's arrays alive
            # until a full garbage collection.
            first = real = errors = results = None  # type: ignore[assignment]

    # -- submit: any function, on the worker with the fewest jobs waiting -----------
    def submit(self, fn, *args) -> Future:
        self.start()
        future: Future = Future()
        with self._lock:
            slot = min(self._slots, key=lambda s: s.pending)
            slot.pending += 1

        def job() -> None:
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        result = fn(*args)
                    except BaseException as exc:
                        future.set_exception(exc)
                    else:
                        future.set_result(result)
            finally:
                with self._lock:
                    slot.pending -= 1

        slot.jobs.put(job)
        return future

    def _abandon(self) -> None:
        """Leave the threads to end after their current job (they stop at the next cancel
        check): a late one must never release a later repeat's lock."""
        for slot in self._slots:
            slot.jobs.put(_STOP)
        self._slots, self._tids = [], {}

    def close(self) -> None:
        if self._slots:
            self.cancel()
            for slot in self._slots:
                slot.jobs.put(_STOP)
            for slot in self._slots:
                slot.thread.join()
            self._slots = []
            self._tids = {}
        super().close()


def _acquire(lock: threading.Lock, limit_s: float | None) -> bool:
    """Wait for `lock`, waking every WAIT_SLICE_S so Ctrl+C reaches the caller."""
    deadline = None if limit_s is None else time.monotonic() + limit_s
    while not lock.acquire(timeout=WAIT_SLICE_S):
        if deadline is not None and time.monotonic() > deadline:
            return False
    return True


def _shares(tasks, workers: int) -> list[list]:
    """Tasks in `workers` contiguous shares, as even as they go (task i on worker i when
    there are as many tasks as workers); the shares of workers left without a task are empty."""
    n = len(tasks)
    base, extra = divmod(n, workers)
    shares, start = [], 0
    for w in range(workers):
        stop = start + base + (w < extra)
        shares.append(list(tasks[start:stop]))
        start = stop
    return shares


def _run_share(layer, kernel, arrays, share, cancel, run, repeat, go, index=None) -> list[Span]:
    return [
        worker.run_stamped(
            layer, kernel, arrays, task, cancel, run, repeat, index=index, go_ns=-1 if k else go
        )
        for k, task in enumerate(share)
    ]
