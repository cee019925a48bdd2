"""The worker side: run one task, stamp it, and hand back its span.

Thread workers and process workers share this module. A process worker attaches
the run's shared-memory arena once and keeps it, so arrays are never pickled:
only the task's few integers travel.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np

from partui.kernels.forward.compute import run_task
from partui.kernels.model.layers import get_layer
from partui.kernels.runtime.scratch import Cancelled, Scratch
from partui.profiles.records.events import Span

_local = threading.local()


def thread_init(counter, tids: dict | None = None) -> None:
    """ThreadPoolExecutor initializer: number the worker (from its pool's counter), give it its own
    scratch.

    `tids` (index -> native thread id) lets the CPU sampler find the worker.
    """
    _local.index = next(counter)  # itertools.count: atomic under the GIL
    _local.scratch = Scratch()
    if tids is not None:
        tids[_local.index] = threading.get_native_id()


def _state():
    if not hasattr(_local, "scratch"):
        _local.index = 0
        _local.scratch = Scratch()
    return _local


class Here:
    """Where a job runs: its worker's index, that worker's scratch buffers, and the run's
    cancel flag (`cancel.is_set()`)."""

    __slots__ = ("index", "scratch", "cancel")

    def __init__(self, index: int, scratch: Scratch, cancel):
        self.index, self.scratch, self.cancel = index, scratch, cancel


def here(cancel=None) -> Here:
    """The worker running this call: a process worker (its cancel flag is the pool's), a pool
    thread, or the calling thread (worker 0). `cancel`: the flag of an in-process executor."""
    if _proc["scratch"] is not None:
        return Here(_proc["index"], _proc["scratch"], _proc["cancel"])
    st = _state()
    return Here(st.index, st.scratch, cancel)


def call_here(fn, item, cancel=None):
    """fn(item, here): how executors hand a job its worker (module level: it travels to
    process workers by name)."""
    return fn(item, here(cancel))


def run_stamped(
    layer,
    kernel,
    arrays,
    task,
    cancel,
    run: int,
    repeat: int,
    index: int | None = None,
    scratch: Scratch | None = None,
    go_ns: int = -1,
) -> Span:
    """Run `task` and stamp it; `go_ns` (when the caller said go) gives the span its wake-up."""
    st = _state()
    if cancel is not None and cancel.is_set():  # queued tasks of a cancelled run stop at once
        raise Cancelled()
    start = time.perf_counter_ns()
    run_task(layer, kernel, arrays, task, scratch or st.scratch, cancel)
    end = time.perf_counter_ns()
    worker = st.index if index is None else index
    wake = start - go_ns if go_ns >= 0 else -1
    return Span.of_task(task, worker, threading.get_native_id(), start, end, run, repeat, wake)


# ---- process workers -------------------------------------------------------

_proc: dict = {"index": 0, "cancel": None, "arenas": {}, "scratch": None}


WATCH_S = 0.5  # how often a process worker checks that partui is still there


def process_init(counter, cancel_event, pids=None, owner: int | None = None) -> None:
    """ProcessPoolExecutor initializer: number the worker, BLAS at 1 thread, leave signals to the
    parent.

    `pids` (a shared array, one slot per worker) lets the CPU sampler find the worker.
    `owner`: the pid of the process that made the pool; the worker ends when it is gone.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us (Ctrl+C, hang-up)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # terminate() must work
    _proc["cancel"] = cancel_event
    _proc["scratch"] = Scratch()
    _proc["counter"] = counter
    from partui.profiles.system import blas

    blas.set_threads(1)
    if owner is not None:
        threading.Thread(
            target=_watchdog, args=(owner, os.getppid()), name="partui-watchdog", daemon=True
        ).start()
    # Numbered last: the parent counts ready workers by this counter.
    with counter.get_lock():
        _proc["index"] = counter.value
        counter.value += 1
    if pids is not None and _proc["index"] < len(pids):
        pids[_proc["index"]] = os.getpid()


def _watchdog(owner: int, parent: int) -> None:
    """End this worker when partui is gone, even after a SIGKILL that left it no time to
    stop us: our parent (the fork server) changes when it dies, and the owner's pid stops
    existing. Without this a worker waits on its task queue forever."""
    while True:
        time.sleep(WATCH_S)
        if os.getppid() != parent or not _alive(owner):
            os._exit(0)  # no clean-up to run: the shared memory belongs to the owner


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def attach(name: str, layout: dict) -> dict[str, np.ndarray]:
    """The arrays of the shared-memory arena `name` in this worker process (attached once)."""
    arenas = _proc["arenas"]
    if name not in arenas:
        from multiprocessing import shared_memory

        # Attaching registers the name with the resource tracker the pool shares
        # with the parent (a set: no double count); the parent unlinks it.
        shm = shared_memory.SharedMemory(name=name)
        if _proc["scratch"] is not None:  # bound calls hold views of the old arena
            _proc["scratch"].drop_calls()
        for old in list(arenas):  # keep one arena: runs come one at a time
            old_shm, old_arrays = arenas.pop(old)
            old_arrays.clear()
            try:
                old_shm.close()
            except BufferError:  # a view is still alive somewhere; the OS frees it at exit
                pass
        arrays = {
            key: np.ndarray(shape, dtype=np.float32, buffer=shm.buf, offset=offset)
            for key, (offset, shape) in layout.items()
        }
        arenas[name] = (shm, arrays)
    return arenas[name][1]


def process_task(
    arena: str, layout: dict, layer_name: str, kernel: str, task, run: int, repeat: int
) -> Span:
    arrays = attach(arena, layout)
    span = run_stamped(
        get_layer(layer_name),
        kernel,
        arrays,
        task,
        _proc["cancel"],
        run,
        repeat,
        index=_proc["index"],
        scratch=_proc["scratch"],
    )
    return Span(**{**span.to_dict(), "tid": os.getpid()})


def process_ping(workers: int, timeout_s: float) -> tuple[int, int]:
    """Used to warm the pool: holds this worker until `workers` have started (or the
    timeout, or a cancel), so the pool starts a new process for every ping; returns
    (worker index, pid)."""
    deadline = time.monotonic() + timeout_s
    counter, cancel = _proc.get("counter"), _proc["cancel"]
    while (
        counter is not None
        and counter.value < workers
        and time.monotonic() < deadline
        and not (cancel is not None and cancel.is_set())
    ):
        time.sleep(0.05)  # 32 workers polling faster would slow the very start they wait for
    return _proc["index"], os.getpid()
