"""The `threads` executor: one parked thread per worker, task i on worker i.

A pool that hands tasks out dynamically (`threads-dynamic`) costs a future, a queue
hand-off and a wake-up per task, and on a loaded machine one of its threads may run
every task of a "2-worker" repeat while the other never wakes. Here each worker has
its own queue: a repeat's tasks are cut into one contiguous share per worker (as the
strategy cut them), the parked threads are woken together, the calling thread runs
share 0 itself (one thread fewer to wake; it sleeps only if its share ends first), and
the results come back in per-worker slots: no future per task.

What is left of the cost (measured, see tests/benchmarks/bench_overhead.py --executors):
one futex wake per woken worker and one for the caller, each slow where the CPU woken was
idle. So where a CPU is free (`_FreeCpus`), a worker that finished its share spins a short
while on its GO flag before it sleeps on its queue, and the caller spins on DONE before it
sleeps on the lock, both in native code without the interpreter lock (kernels/native_wait).
A task holds the interpreter lock only to start and stamp its bound call (compute.bound_call).

Each span records its wake-up latency (`Span.wake_ns`): from the moment the caller
said "go" to the start of the worker's first task of the phase.

`submit()` (pipelines, backward and training passes) queues a job on the worker with
the fewest jobs waiting; worker 0 then has a thread of its own, parked the rest of
the time, so its CPU time is counted for worker 0 together with the caller's.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from concurrent.futures import Future

from partui.kernels.scratch import Cancelled

from . import worker
from .events import Span
from .executors import SETTLE_S, WAIT_SLICE_S, Executor, ThreadExecutor, WorkerIds

_STOP = object()
GO, DONE = 0, 8  # flag indices, 64 bytes apart
# How long a thread spins (on a CPU of its own, without the GIL) before it sleeps: a worker
# after its share, waiting for the next one; the caller after its own share, waiting for a
# worker's. An idle vCPU takes tens of microseconds to wake; a repeat's tasks can be shorter.
SPIN_FOR_JOB_NS = 200_000
SPIN_FOR_DONE_NS = 100_000
# After seeing GO, a worker spins this much longer: the caller holds the GIL for a few
# microseconds more before its own native call, and a worker that asks for it meanwhile
# sleeps in the kernel until it is released.
GO_SETTLE_NS = 0
SPIN = True  # False: sleep at once, whatever the CPUs do (benchmarks compare the two)


class _FreeCpus:
    """Is there a CPU to spin on? Spinning pays only where the thread waited for would
    otherwise wake an idle CPU; where threads queue for the CPUs it takes a CPU from that
    very thread (a repeat of empty tasks at load 7 on 2 CPUs: 25-36 us sleeping, 300-900 us
    spinning). Judged by the kernel's CPU pressure (/proc/pressure/cpu: the share of time
    some thread waited for a CPU): spinning while it stayed under STALLED both over the
    last 10 s (the kernel's avg10) and over the last REFRESH_S, so a busy stretch, or the
    spin itself making a thread wait, turns spinning off at once. Without pressure
    figures, never."""

    REFRESH_S = 0.02
    STALLED = 0.05
    PATH = "/proc/pressure/cpu"

    def __init__(self) -> None:
        self.cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        self.free = False
        self.last = self._read()

    def _read(self) -> tuple[float, float, float] | None:
        """(when, seconds some thread waited so far, % of the last 10 s)"""
        try:
            with open(self.PATH) as fh:
                some = dict(f.split("=") for f in fh.readline().split()[1:])
            return time.monotonic(), int(some["total"]) / 1e6, float(some["avg10"])
        except (OSError, ValueError, KeyError):
            return None

    def __call__(self) -> bool:
        if self.last is None or self.cpus < 2:
            return False
        now = time.monotonic()
        if now - self.last[0] >= self.REFRESH_S:
            got = self._read()
            if got is None:
                return False
            stalled = (got[1] - self.last[1]) / (got[0] - self.last[0])
            self.free = stalled < self.STALLED and got[2] < 100 * self.STALLED
            self.last = got
        return self.free


def _flags():
    import numpy as np

    return np.zeros(16, np.int64)


def _spin():
    """The native spin-wait, compiled (or loaded from numba's cache) now, not in a timed
    repeat; or None where it cannot run (then threads sleep at once)."""
    try:
        from partui.kernels.native_wait import spin_while
    except ImportError:
        return None
    spin_while(_flags(), GO, 1, 0)  # the flag is not 1: returns at once
    return spin_while


class _Slot:
    """One worker's thread, its queue of jobs, and where its results are left.

    flags[GO] counts the jobs handed to it, flags[DONE] the shares it finished (int64, one
    cache line each): a thread waiting for the other spins on them a short while without
    the GIL before it sleeps on the queue or the lock (see `_spin`).
    """

    def __init__(self, index: int, tids: dict, spin):
        self.index = index
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.pending = 0  # submitted jobs not yet finished (read by submit to balance)
        self.done = threading.Lock()
        self.done.acquire()  # released by the thread when a share is finished
        self.ready = threading.Event()
        self.flags = _flags()
        self.spin = spin  # the native spin-wait, or None
        self.spinning = False  # spin before sleeping (the caller decides, run by run)
        self.thread = threading.Thread(
            target=self._loop, args=(tids,), name=f"partui-worker-{index}", daemon=True
        )
        self.thread.start()

    def hand(self, job) -> None:
        self.jobs.put(job)
        self.flags[GO] += 1

    def finished(self) -> None:
        """A share is done: release the caller (spinning on DONE, or asleep on the lock)."""
        self.done.release()
        self.flags[DONE] += 1

    def _loop(self, tids: dict) -> None:
        worker.thread_init(iter([self.index]), tids)
        self.ready.set()
        flags, jobs = self.flags, self.jobs
        while True:
            handed = int(flags[GO])
            try:
                job = jobs.get_nowait()
            except queue.Empty:  # the next repeat's share is often microseconds away
                if self.spinning:
                    self.spin(flags, GO, handed, SPIN_FOR_JOB_NS, GO_SETTLE_NS)
                job = jobs.get()
            if job is _STOP:
                return
            job()


class ParkedThreadExecutor(ThreadExecutor):
    """Threads parked on their own queues between repeats; the caller is worker 0."""

    name = "threads"

    def __init__(self, workers: int):
        super().__init__(workers)
        self._slots: list[_Slot] = []
        self._lock = threading.Lock()  # submit() may be called from several threads
        self._idle = _FreeCpus()

    def _spin_now(self) -> bool:
        return SPIN and bool(self._slots) and self._slots[0].spin is not None and self._idle()

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
        try:
            spin = _spin()
            for i in range(self.workers):
                slots.append(_Slot(i, self._tids, spin))
            for slot in slots:
                while not slot.ready.wait(WAIT_SLICE_S):
                    pass
        except BaseException:  # Ctrl+C while starting: no thread left behind
            for slot in slots:
                slot.hand(_STOP)
            for slot in slots:
                slot.thread.join()
            raise
        self._slots = slots
        self.startup_ms = (time.perf_counter_ns() - t0) / 1e6
        return self.startup_ms

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
            self._slots[w].finished()

        busy = [w for w in range(1, len(shares)) if shares[w]]
        slots = self._slots
        finished = [int(slots[w].flags[DONE]) for w in busy]
        spinning = self._spin_now()
        for w in busy:
            slots[w].spinning = spinning
        go = time.perf_counter_ns()
        for w in busy:
            slots[w].hand(lambda w=w: share_job(w, go))
        try:
            if shares[0]:
                results[0] = fn(shares[0], 0, go)
        except BaseException as exc:
            cancel.set()
            errors[0] = exc
        for w, before in zip(busy, finished):
            if spinning:
                slots[w].spin(slots[w].flags, DONE, before, SPIN_FOR_DONE_NS)
            if not _acquire(slots[w].done, SETTLE_S if errors[0] is not None else None):
                self._abandon()  # a worker that does not stop in time: the next run gets
                break  # fresh threads (a late one must never release a later repeat's lock)
        real = [e for e in errors if e is not None and not isinstance(e, Cancelled)]
        if real or any(errors):
            raise real[0] if real else next(e for e in errors if e is not None)
        return [item for got in results for item in got]

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

        slot.hand(job)
        return future

    def _abandon(self) -> None:
        """Leave the threads to end after their current job (they stop at the next cancel
        check): a late one must never release a later repeat's lock."""
        for slot in self._slots:
            slot.hand(_STOP)
        self._slots, self._tids = [], {}

    def close(self) -> None:
        if self._slots:
            self.cancel()
            for slot in self._slots:
                slot.hand(_STOP)
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


def is_parked(ex: Executor) -> bool:
    return isinstance(ex, ParkedThreadExecutor)
