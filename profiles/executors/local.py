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
from typing import Any

import numpy as np

from partui.kernels.forward.compute import release_bound_calls
from partui.profiles.executors import worker
from partui.profiles.records.events import Span

WAIT_SLICE_S = 0.05  # how often a waiting caller wakes to notice Ctrl+C
KILL_GRACE_S = 0.3  # after SIGTERM, how long workers get to end before SIGKILL
SETTLE_S = 2.0  # after a failure, how long to let sibling tasks stop before the pool is reused
STARTUP_TIMEOUT_S = 60.0  # a process pool that is not up by then is reported, not waited for
STARTUP_PER_WORKER_S = 0.5  # ...plus this per worker: 256 start in ~10 s idle, slower when busy
FDS_PER_WORKER = 2  # the pool's sentinel and the fork server's status pipe, in each process
FDS_BASE = 64  # pipes, queues, the shared-memory arena, the interpreter's own files


def startup_timeout(workers: int) -> float:
    return STARTUP_TIMEOUT_S + STARTUP_PER_WORKER_S * workers


def pool_refusal(workers: int) -> str | None:
    """Why a pool of `workers` processes cannot be started here (None: it can), said before
    anything starts: open-file and process limits, and memory for the workers."""
    import resource

    need = FDS_BASE + FDS_PER_WORKER * workers
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and need > soft:
        return (
            f"{workers} worker processes need about {need} open files and the limit "
            f"is {soft} (ulimit -n); use fewer workers or raise the limit"
        )
    soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    if soft != resource.RLIM_INFINITY and os.getuid() != 0:
        import psutil

        mine = sum(
            1
            for p in psutil.process_iter(["uids"])
            if p.info["uids"] and p.info["uids"].real == os.getuid()
        )
        if mine + workers + 2 > soft:
            return (
                f"{workers} worker processes would pass the limit of {soft} processes "
                f"(ulimit -u; {mine} running already)"
            )
    from partui.profiles.system.memory_limits import shortfall

    short = shortfall(workers * WORKER_MEMORY, include_rlimit=False)
    if short:
        return f"{workers} worker processes {short}"
    return None


# worker index -> native thread id (or pid); a tuple when a worker is several threads taking
# turns (the CPU sampler sums them)
WorkerIds = dict[int, int | tuple[int, ...]]

WORKER_MEMORY = 24 * 2**20  # a pool worker's own memory (numpy is shared with the fork server)


class WorkerLost(RuntimeError):
    """A process worker died while running a task."""


class Arena:
    """The run's arrays. In-process executors use plain numpy arrays."""

    def __init__(self, shapes: dict[str, tuple[int, ...]]):
        self.arrays = {k: np.empty(s, dtype=np.float32) for k, s in shapes.items()}

    def close(self) -> None:
        release_bound_calls(self.arrays)  # workers' bound calls hold views of them
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
        self.arrays = {
            k: np.ndarray(shape, dtype=np.float32, buffer=self.shm.buf, offset=off)
            for k, (off, shape) in self.layout.items()
        }

    def close(self) -> None:
        release_bound_calls(self.arrays)
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

    @property
    def worker_cpus(self) -> list[int]:
        """The CPU each worker is pinned to; empty: where the scheduler puts them."""
        return []

    def placed(self) -> contextlib.AbstractContextManager:
        """Around a run's timed repeats: where the calling thread runs while it is worker 0
        (the parked threads pin it to a CPU of its own; the others leave it where it is)."""
        return contextlib.nullcontext()

    def arena(self, shapes) -> Arena:
        return self.arena_class(shapes)

    def run_phase(self, layer, kernel, arena, tasks, run, repeat, on_span=None) -> list[Span]:
        raise NotImplementedError

    def submit(self, fn, *args):
        """Run fn(*args) on one of the pool's workers; a future. In-process executors have no
        pool: they run jobs through run_phase and run_each only."""
        raise NotImplementedError(f"executor {self.name!r} has no pool to submit to")

    def run_each(self, fn, items, on_result=None) -> list:
        """fn(item, here) for every item, and wait for all: their results in item order.

        `here` (worker.Here) is the worker running the call: its index, its scratch and the
        run's cancel flag. A pool hands every item out at once, each to an idle worker while
        there is one, so a pipeline's stages run side by side; in-process executors run the
        items one after another on the calling thread (worker 0). `on_result(result)` is
        called as each one finishes. The first error stops the others (at their next check
        of the cancel flag) and is raised; a lost worker process raises WorkerLost.
        """
        results = []
        for item in items:
            results.append(worker.call_here(fn, item, self.cancel_event))
            if on_result:
                on_result(results[-1])
        return results

    def wait(self, futures, on_result=None) -> list:
        """Wait for futures this executor's submit() made; their results in order.

        Wakes often so Ctrl+C reaches the caller; `on_result(result)` as each finishes. The
        first error cancels the run (the other jobs stop at their next check) and is raised
        once they have stopped or SETTLE_S has passed.
        """
        if on_result:
            for f in futures:
                f.add_done_callback(lambda f: f.exception() is None and on_result(f.result()))
        return _wait_all(futures, self.cancel)

    def worker_ids(self) -> WorkerIds:
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
            from partui.kernels.runtime.scratch import Scratch

            self._scratch = Scratch()
        spans = []
        for task in tasks:
            span = worker.run_stamped(
                layer,
                kernel,
                arena.arrays,
                task,
                self.cancel_event,
                run,
                repeat,
                index=0,
                scratch=self._scratch,
            )
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


HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def _sigint_held():
    """Hold Ctrl+C (and SIGTERM, SIGHUP) while child processes are being started.

    A terminal sends Ctrl+C to the whole process group, and closing it SIGHUP. Children
    inherit the signal mask of the thread that starts them: with these blocked, a
    half-started fork server or worker cannot die of them with a traceback or before it can
    clean up; once up, a worker ignores SIGINT and SIGHUP (the parent stops it, or its
    watchdog does) and unblocks SIGTERM. In this process a signal is recorded in the list
    yielded, so the caller can give up at once, and is delivered at the end: the mask alone
    is not enough, since the signal can land on another thread (OpenBLAS's) and would then
    interrupt the hand-shake with the fork server half-way.
    """
    if not hasattr(signal, "pthread_sigmask"):
        yield []
        return
    held: list = []
    on_main = threading.current_thread() is threading.main_thread()
    previous = {}
    if on_main:
        for sig in HELD_SIGNALS:
            if sig == signal.SIGINT or callable(signal.getsignal(sig)):  # handled: hold it
                previous[sig] = signal.signal(
                    sig, lambda signum, frame: held.append((signum, frame))
                )
    try:
        # The standard library starts its resource tracker with SIGINT and SIGTERM blocked,
        # then unblocks them: start it first, with SIGHUP alone blocked (the tracker keeps
        # that mask, so a closed terminal does not kill it before partui has cleaned up).
        from multiprocessing import resource_tracker

        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
        try:
            resource_tracker.ensure_running()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, set(HELD_SIGNALS))
        try:
            yield held
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if held:
        signum, frame = held[0]
        handler = previous.get(signum)
        if callable(handler):
            handler(signum, frame)  # default_int_handler raises KeyboardInterrupt


def _wait_all(futures, cancel):
    """Wait for every future, waking often so Ctrl+C reaches the caller; the first error is
    raised."""
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

    def worker_ids(self) -> WorkerIds:
        return dict(self._tids)

    def start(self) -> float:
        if self._pool is not None:
            return 0.0
        t0 = time.perf_counter_ns()
        self._tids = {}
        self._pool = ThreadPoolExecutor(
            self.workers,
            thread_name_prefix="partui-worker",
            initializer=worker.thread_init,
            initargs=(itertools.count(), self._tids),
        )
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

    def run_each(self, fn, items, on_result=None) -> list:
        futures = [self.submit(worker.call_here, fn, item, self.cancel_event) for item in items]
        return self.wait(futures, on_result)

    def run_phase(self, layer, kernel, arena, tasks, run, repeat, on_span=None):
        self.start()
        futures = [
            self._pool.submit(
                worker.run_stamped,
                layer,
                kernel,
                arena.arrays,
                task,
                self.cancel_event,
                run,
                repeat,
            )
            for task in tasks
        ]
        return self.wait(futures, on_span)

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
        self._ctx.set_forkserver_preload(["partui.profiles.executors.worker"])
        self._pool: ProcessPoolExecutor | None = None
        self._mp_cancel: Any = None  # a multiprocessing Event, made in start()
        self._pids: Any = None  # a shared multiprocessing Array of worker pids

    processes = True

    def worker_ids(self) -> WorkerIds:
        return {i: pid for i, pid in enumerate(self._pids or []) if pid}

    def start(self) -> float:
        if self._pool is not None:
            return 0.0
        t0 = time.perf_counter_ns()
        try:
            with _sigint_held() as held, _one_blas_thread_env():
                # here, so the fork server (and every worker forked from it) inherits the
                # held signals, and loads BLAS without a pool of its own threads
                forkserver.ensure_running()
                self._mp_cancel = self._ctx.Event()
                counter = self._ctx.Value("i", 0)
                self._pids = self._ctx.Array("i", self.workers, lock=False)
                self._pool = ProcessPoolExecutor(
                    self.workers,
                    mp_context=self._ctx,
                    initializer=worker.process_init,
                    initargs=(counter, self._mp_cancel, self._pids, os.getpid()),
                )
                # Start every process now (the pool starts them lazily otherwise), and wait
                # until each has run its initializer. The pool starts a process for a task
                # only while no worker is idle: each ping therefore holds its worker until
                # all are up, or a quick ping would free a worker, the next task would go
                # to it, and only some of the processes would ever start.
                futures = []
                for _ in range(self.workers):  # each submit starts a process: seconds for 64
                    if held:
                        break
                    futures.append(
                        self._pool.submit(
                            worker.process_ping, self.workers, startup_timeout(self.workers)
                        )
                    )
                deadline = time.monotonic() + startup_timeout(self.workers)
                while counter.value < self.workers or not all(f.done() for f in futures):
                    if held:  # Ctrl+C, SIGTERM or SIGHUP: give up now (the signal is
                        break  # delivered as the block ends), not after the whole wait
                    broken = [f for f in futures if f.done() and f.exception() is not None]
                    if broken:
                        raise broken[0].exception()  # type: ignore[misc]  # not None: checked
                    if time.monotonic() > deadline:
                        raise WorkerLost(
                            f"{counter.value} of {self.workers} worker processes "
                            f"started within {startup_timeout(self.workers):.0f} s"
                        )
                    time.sleep(0.005)
            if counter.value < self.workers:  # a held signal whose handler raised nothing
                raise KeyboardInterrupt
        except BaseException:  # Ctrl+C or a failed start: no half-started pool left behind
            self.kill()
            raise
        self.startup_ms = (time.perf_counter_ns() - t0) / 1e6
        return self.startup_ms

    @property
    def pids(self) -> list[int]:
        if self._pool is None:
            return []
        return [p.pid for p in (self._pool._processes or {}).values() if p.pid is not None]

    def submit(self, fn, *args):
        """Run a module-level function in a worker process (arguments are pickled)."""
        self.start()
        return self._pool.submit(fn, *args)

    def run_each(self, fn, items, on_result=None) -> list:
        """As Executor.run_each; `fn` and the items are pickled (a module-level function),
        and `here.cancel` is the pool's own cancel flag."""
        futures = [self.submit(worker.call_here, fn, item) for item in items]
        return self.wait(futures, on_result)

    def wait(self, futures, on_result=None) -> list:
        try:
            return super().wait(futures, on_result)
        except BrokenProcessPool as exc:
            self.kill()
            raise WorkerLost(
                "a worker process was lost (killed or crashed) during the run"
            ) from exc

    def run_phase(self, layer, kernel, arena, tasks, run, repeat, on_span=None):
        self.start()
        futures = [
            self._pool.submit(
                worker.process_task, arena.name, arena.layout, layer.name, kernel, task, run, repeat
            )
            for task in tasks
        ]
        return self.wait(futures, on_span)

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
        # one short deadline for all: a worker still starting has SIGTERM blocked (inherited
        # from the held start-up), and waiting a second for each of 64 would hold Ctrl+C
        deadline = time.monotonic() + KILL_GRACE_S
        for p in procs:
            p.join(timeout=max(0.0, deadline - time.monotonic()))
        for p in procs:
            if p.is_alive():
                p.kill()
        for p in procs:
            p.join(timeout=1)
        # The pool's manager thread sees the dead workers and ends; join it so no thread
        # outlives the pool (and none races the interpreter's exit hook, which would print
        # an 'Exception ignored' traceback).
        manager: Any = self._pool._executor_manager_thread  # a thread (typeshed: a wakeup)
        self._pool.shutdown(wait=False, cancel_futures=True)
        if manager is not None:
            manager.join(timeout=1)
        self._pool = None

    def close(self) -> None:
        if self._pool is not None:
            self.cancel()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class DynamicThreadExecutor(ThreadExecutor):
    """The pool above under its own name: idle threads take tasks as they come."""

    name = "threads-dynamic"


EXECUTOR_CLASSES = {
    "inline": InlineExecutor,
    "threads-dynamic": DynamicThreadExecutor,
    "processes": ProcessExecutor,
    "blas": BlasExecutor,
}


def make_executor(name: str, workers: int) -> Executor:
    if name == "threads":  # its module builds on this one
        from partui.profiles.executors.threads import ParkedThreadExecutor

        return ParkedThreadExecutor(workers)
    return EXECUTOR_CLASSES[name](workers)
