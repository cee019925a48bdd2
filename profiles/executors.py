"""Who runs the tasks: the calling thread, a thread pool, a process pool, or BLAS itself.

Pools are made once and reused across repeats and runs; making one is timed and
reported apart from the run. Every executor hands back one Span per task.
"""
from __future__ import annotations

import contextlib
import itertools
import multiprocessing as mp
import os
import signal
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool, ProcessPoolExecutor
from multiprocessing import forkserver, shared_memory

import numpy as np

from . import worker
from .events import Span

WAIT_SLICE_S = 0.05  # how often a waiting caller wakes to notice Ctrl+C
SETTLE_S = 2.0  # after a failure, how long to let sibling tasks stop before the pool is reused
STARTUP_TIMEOUT_S = 60.0  # a process pool that is not up by then is reported, not waited for


class WorkerLost(RuntimeError):
    """A process worker died while running a task."""


class Arena:
    """The run's arrays. In-process executors use plain numpy arrays."""

    def __init__(self, shapes: dict[str, tuple[int, ...]]):
        self.arrays = {k: np.empty(s, dtype=np.float32) for k, s in shapes.items()}

    def close(self) -> None:
        self.arrays = {}


class SharedArena(Arena):
    """The run's arrays in one shared-memory segment, seen by every process worker."""

    ALIGN = 64  # one cache line: no two arrays share a line

    def __init__(self, shapes: dict[str, tuple[int, ...]]):
        self.layout: dict[str, tuple[int, tuple[int, ...]]] = {}
        offset = 0
        for key, shape in shapes.items():
            self.layout[key] = (offset, tuple(shape))
            size = int(np.prod(shape)) * 4
            offset += (size + self.ALIGN - 1) // self.ALIGN * self.ALIGN
        self.shm = shared_memory.SharedMemory(create=True, size=max(offset, self.ALIGN))
        self.name = self.shm.name
        self.arrays = {k: np.ndarray(shape, dtype=np.float32, buffer=self.shm.buf, offset=off)
                       for k, (off, shape) in self.layout.items()}

    def close(self) -> None:
        self.arrays = {}
        try:
            self.shm.close()
        except BufferError:  # a caller still holds a view; unlink still frees it later
            pass
        try:
            self.shm.unlink()
        except FileNotFoundError:
            pass


class Executor:
    name = "?"
    arena_class = Arena

    def __init__(self, workers: int):
        self.workers = workers
        self.startup_ms = 0.0
        self.cancel_event = threading.Event()

    @property
    def blas_threads(self) -> int:
        return 1

    def start(self) -> float:
        """Make the pool if needed; returns the milliseconds it took (0 when warm)."""
        return 0.0

    def arena(self, shapes) -> Arena:
        return self.arena_class(shapes)

    def run_phase(self, layer, kernel, arena, tasks, run, repeat, on_span=None) -> list[Span]:
        raise NotImplementedError

    def worker_ids(self) -> dict[int, int]:
        """Worker index -> native thread id (or pid, see `processes`), for the CPU sampler.

        In-process executors run on the calling thread, which is worker 0.
        """
        return {0: threading.get_native_id()}

    processes = False  # True when worker_ids() gives pids

    def cancel(self) -> None:
        self.cancel_event.set()

    def reset(self) -> None:
        self.cancel_event.clear()

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class InlineExecutor(Executor):
    """Tasks one after another on the calling thread."""
    name = "inline"

    def __init__(self, workers: int = 1):
        super().__init__(1)
        self._scratch = None

    def run_phase(self, layer, kernel, arena, tasks, run, repeat, on_span=None):
        if self._scratch is None:  # (an import here would run inside every timed repeat)
            from partui.kernels.scratch import Scratch
            self._scratch = Scratch()
        spans = []
        for task in tasks:
            span = worker.run_stamped(layer, kernel, arena.arrays, task, self.cancel_event,
                                      run, repeat, index=0, scratch=self._scratch)
            spans.append(span)
            if on_span:
                on_span(span)
        return spans


class BlasExecutor(InlineExecutor):
    """One vectorized call on the calling thread; BLAS spreads it over its own threads."""
    name = "blas"

    def __init__(self, workers: int):
        super().__init__()
        self.workers = workers

    @property
    def blas_threads(self) -> int:
        return self.workers


@contextlib.contextmanager
def _sigint_held():
    """Hold Ctrl+C while child processes are being started, then deliver it.

    A terminal sends Ctrl+C to the whole process group. Children inherit the signal mask
    of the thread that starts them: with SIGINT blocked, a half-started fork server or
    worker cannot die of it with a traceback; once up, each sets SIGINT to ignored (which
    drops a pending one). In this process, a Ctrl+C is recorded and raised at the end: the
    mask alone is not enough, since the signal can land on another thread (OpenBLAS's) and
    would then interrupt the hand-shake with the fork server half-way.
    """
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    held = []
    on_main = threading.current_thread() is threading.main_thread()
    if on_main:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(frame))
    try:
        # The standard library starts its resource tracker with SIGINT blocked too, but
        # unblocks it afterwards: start it before blocking.
        from multiprocessing import resource_tracker
        resource_tracker.ensure_running()
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    finally:
        if on_main:
            signal.signal(signal.SIGINT, previous)
    if held and callable(previous):
        previous(signal.SIGINT, held[0])  # default_int_handler raises KeyboardInterrupt


def _wait_all(futures, cancel):
    """Wait for every future, waking often so Ctrl+C reaches the caller; the first error is raised."""
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=WAIT_SLICE_S, return_when=FIRST_EXCEPTION)
        for f in done:
            if f.exception() is not None:
                cancel()  # siblings stop at their next check
                # ...and are let stop, so the next run does not share the pool with them
                wait(pending, timeout=SETTLE_S)
                raise f.exception()
    return [f.result() for f in futures]


class ThreadExecutor(Executor):
    name = "threads"

    def __init__(self, workers: int):
        super().__init__(workers)
        self._pool: ThreadPoolExecutor | None = None
        self._tids: dict[int, int] = {}

    def worker_ids(self) -> dict[int, int]:
        return dict(self._tids)

    def start(self) -> float:
        if self._pool is not None:
            return 0.0
        t0 = time.perf_counter_ns()
        self._tids = {}
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="partui-worker",
                                        initializer=worker.thread_init,
                                        initargs=(itertools.count(), self._tids))
        # Start every thread now so the first timed run does not pay for it.
        barrier = threading.Barrier(self.workers)
        try:
            list(self._pool.map(lambda _: barrier.wait(timeout=10), range(self.workers)))
        except BaseException:  # Ctrl+C: release the threads already waiting
            barrier.abort()
            raise
        self.startup_ms = (time.perf_counter_ns() - t0) / 1e6
        return self.startup_ms

    def submit(self, fn, *args):
        self.start()
        return self._pool.submit(fn, *args)

    def run_phase(self, layer, kernel, arena, tasks, run, repeat, on_span=None):
        self.start()
        futures = []
        for task in tasks:
            f = self._pool.submit(worker.run_stamped, layer, kernel, arena.arrays, task,
                                  self.cancel_event, run, repeat)
            if on_span:
                f.add_done_callback(lambda f: f.exception() is None and on_span(f.result()))
            futures.append(f)
        return _wait_all(futures, self.cancel)

    def close(self) -> None:
        if self._pool is not None:
            self.cancel()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def _one_blas_thread_env():
    """BLAS thread count 1 in the environment of processes started inside.

    threadpoolctl in a worker's initializer sets 1 thread too late: OpenBLAS has by then
    started its own threads at import, and one spins for ~100 ms of CPU at each new worker.
    """
    saved = {k: os.environ.get(k) for k in BLAS_THREAD_VARS}
    os.environ.update({k: "1" for k in BLAS_THREAD_VARS})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class ProcessExecutor(Executor):
    """A pool of worker processes started by a fork server, arrays in shared memory."""
    name = "processes"
    arena_class = SharedArena

    def __init__(self, workers: int):
        super().__init__(workers)
        self._ctx = mp.get_context("forkserver")
        self._ctx.set_forkserver_preload(["partui.profiles.worker"])
        self._pool: ProcessPoolExecutor | None = None
        self._mp_cancel = None
        self._pids = None

    processes = True

    def worker_ids(self) -> dict[int, int]:
        return {i: pid for i, pid in enumerate(self._pids or []) if pid}

    def start(self) -> float:
        if self._pool is not None:
            return 0.0
        t0 = time.perf_counter_ns()
        try:
            with _sigint_held(), _one_blas_thread_env():
                # here, so the fork server (and every worker forked from it) inherits the
                # held SIGINT, and loads BLAS without a pool of its own threads
                forkserver.ensure_running()
                self._mp_cancel = self._ctx.Event()
                counter = self._ctx.Value("i", 0)
                self._pids = self._ctx.Array("i", self.workers, lock=False)
                self._pool = ProcessPoolExecutor(self.workers, mp_context=self._ctx,
                                                 initializer=worker.process_init,
                                                 initargs=(counter, self._mp_cancel, self._pids))
                # Start every process now (the pool starts them lazily otherwise), and wait
                # until each has run its initializer: one quick worker can run every ping
                # while another is still starting, and the first timed repeats would then
                # run on fewer workers than they claim.
                futures = [self._pool.submit(worker.process_ping) for _ in range(self.workers)]
                deadline = time.monotonic() + STARTUP_TIMEOUT_S
                while counter.value < self.workers:
                    broken = [f for f in futures if f.done() and f.exception() is not None]
                    if broken:
                        raise broken[0].exception()
                    if time.monotonic() > deadline:
                        raise WorkerLost(f"worker processes did not start within "
                                         f"{STARTUP_TIMEOUT_S:.0f} s")
                    time.sleep(0.002)
                wait(futures)
        except BaseException:  # Ctrl+C or a failed start: no half-started pool left behind
            self.kill()
            raise
        self.startup_ms = (time.perf_counter_ns() - t0) / 1e6
        return self.startup_ms

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in (self._pool._processes or {}).values()] if self._pool else []  # noqa: SLF001

    def submit(self, fn, *args):
        """Run a module-level function in a worker process (arguments are pickled)."""
        self.start()
        return self._pool.submit(fn, *args)

    def run_phase(self, layer, kernel, arena, tasks, run, repeat, on_span=None):
        self.start()
        futures = []
        for task in tasks:
            f = self._pool.submit(worker.process_task, arena.name, arena.layout, layer.name,
                                  kernel, task, run, repeat)
            if on_span:
                f.add_done_callback(lambda f: f.exception() is None and on_span(f.result()))
            futures.append(f)
        try:
            return _wait_all(futures, self.cancel)
        except BrokenProcessPool as exc:
            self.kill()
            raise WorkerLost("a worker process was lost (killed or crashed) during the run") from exc

    def cancel(self) -> None:
        super().cancel()
        if self._mp_cancel is not None:
            self._mp_cancel.set()

    def reset(self) -> None:
        super().reset()
        if self._mp_cancel is not None:
            self._mp_cancel.clear()

    def kill(self) -> None:
        """Stop every worker process now (Ctrl+C, a lost worker)."""
        if self._pool is None:
            return
        procs = list((self._pool._processes or {}).values())  # noqa: SLF001
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=1)
            if p.is_alive():
                p.kill()
                p.join(timeout=1)
        # The pool's manager thread sees the dead workers and ends; join it so no thread
        # outlives the pool (and none races the interpreter's exit hook, which would print
        # an 'Exception ignored' traceback).
        manager = self._pool._executor_manager_thread  # noqa: SLF001
        self._pool.shutdown(wait=False, cancel_futures=True)
        if manager is not None:
            manager.join(timeout=1)
        self._pool = None

    def close(self) -> None:
        if self._pool is not None:
            self.cancel()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


EXECUTOR_CLASSES = {
    "inline": InlineExecutor,
    "threads": ThreadExecutor,
    "processes": ProcessExecutor,
    "blas": BlasExecutor,
}


def make_executor(name: str, workers: int) -> Executor:
    return EXECUTOR_CLASSES[name](workers)
