"""A pool of worker processes started by a fork server, the run's arrays in shared memory
(`processes`), and what starting child processes safely needs: signals held while they
start, BLAS at one thread in them, limits checked before."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import time
from concurrent.futures.process import BrokenProcessPool, ProcessPoolExecutor
from multiprocessing import forkserver
from multiprocessing.connection import wait as wait_any
from typing import Any

from partui.profiles.executors import worker
from partui.profiles.executors.base import (
    KILL_GRACE_S,
    Executor,
    SharedArena,
    WorkerIds,
    WorkerLost,
    startup_timeout,
)
from partui.profiles.system import interrupts

# how long closing waits for the workers to end by themselves before ending them
CLOSE_WAIT_S = 5.0

FDS_PER_WORKER = 2  # the pool's sentinel and the fork server's status pipe, in each process


FDS_BASE = 64  # pipes, queues, the shared-memory arena, the interpreter's own files


WORKER_MEMORY = 64 * 2**20  # a pool worker's own memory (numpy is shared with the fork server)


def open_files_refusal(workers: int, per_worker: int) -> str | None:
    """Why `workers` worker processes that each hold `per_worker` descriptors here cannot
    start under the open-file limit (None: they can)."""
    import resource

    need = FDS_BASE + per_worker * workers
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and need > soft:
        return (
            f"{workers} worker processes need about {need} open files and the limit "
            f"is {soft} (ulimit -n); use fewer workers or raise the limit"
        )
    return None


def pool_refusal(workers: int) -> str | None:
    """Why a pool of `workers` processes cannot be started here (None: it can), said before
    anything starts: open-file and process limits, and memory for the workers."""
    import resource

    refused = open_files_refusal(workers, FDS_PER_WORKER)
    if refused:
        return refused
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


def _end_processes(procs) -> None:
    """SIGTERM, a short grace, then SIGKILL (which a stopped process cannot ignore)."""
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


@contextlib.contextmanager
def signals_held():
    """Hold Ctrl+C (and SIGTERM, SIGHUP) while child processes are being started.

    A terminal sends Ctrl+C to the whole process group, and closing it SIGHUP. Children
    inherit the signal mask of the thread that starts them: with these blocked, a
    half-started fork server or worker cannot die of them with a traceback or before it can
    clean up; once up, a worker ignores SIGINT and SIGHUP (the parent stops it, or its
    watchdog does) and unblocks SIGTERM. In this process a signal is recorded in the list
    yielded, so the caller can give up at once, and is delivered at the end
    (interrupts.deferred): the mask alone is not enough, since the signal can land on another
    thread (OpenBLAS's) and would then interrupt the hand-shake with the fork server half-way.
    """
    if not hasattr(signal, "pthread_sigmask"):
        yield []
        return
    with interrupts.deferred() as held:
        # The standard library starts its resource tracker with SIGINT and SIGTERM blocked,
        # then unblocks them: start it first, with SIGHUP alone blocked (the tracker keeps
        # that mask, so a closed terminal does not kill it before partui has cleaned up).
        from multiprocessing import resource_tracker

        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
        try:
            resource_tracker.ensure_running()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, set(interrupts.STOPS))
        try:
            yield held
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)


BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def one_blas_thread_env():
    """BLAS thread count 1 in the environment of processes started inside.

    threadpoolctl in a worker's initializer sets 1 thread too late: OpenBLAS has by then
    started its own threads at import, and they spin at each new worker.
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
    exclusive = True
    runs_jobs_together = True

    @classmethod
    def refusal(cls, workers: int, scheduler: str = "") -> str | None:
        return pool_refusal(workers)

    def stop_now(self) -> bool:
        self.cancel()
        self.kill()
        return False

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
        if self._pool is not None and not self.broken:
            return 0.0
        if self._pool is not None:  # a worker died while idle (the OOM killer): a new pool
            self.kill()
        t0 = time.perf_counter_ns()
        try:
            with signals_held() as held, one_blas_thread_env():
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
                        exc = broken[0].exception()
                        if isinstance(exc, BrokenProcessPool):
                            raise WorkerLost(
                                "a worker process died while the pool started"
                            ) from exc
                        raise exc  # type: ignore[misc]  # not None: checked
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

    def _started(self) -> None:
        """Start the pool if there is none. A pool broken during a run is not replaced
        here: the run fails (WorkerLost) and the next run's start() makes a new one."""
        if self._pool is None:
            self.start()

    @property
    def broken(self) -> bool:
        """A worker process died: the pool takes no more work."""
        return bool(getattr(self._pool, "_broken", False))

    @property
    def pids(self) -> list[int]:
        if self._pool is None:
            return []
        return [p.pid for p in (self._pool._processes or {}).values() if p.pid is not None]

    def submit(self, fn, *args):
        """Run a module-level function in a worker process (arguments are pickled)."""
        self._started()
        with self._lost_worker():  # one died between two submissions
            return self._pool.submit(fn, *args)

    @contextlib.contextmanager
    def _lost_worker(self):
        """A dead worker process breaks the pool: say so in words, and end the pool."""
        try:
            yield
        except BrokenProcessPool as exc:
            self.kill()
            raise WorkerLost(
                "a worker process was lost (killed or crashed) during the run"
            ) from exc

    def run_each(self, fn, items, on_result=None) -> list:
        """As Executor.run_each; `fn` and the items are pickled (a module-level function),
        and `here.cancel` is the pool's own cancel flag."""
        futures = [self.submit(worker.call_here, fn, item) for item in items]
        return self.wait(futures, on_result)

    def wait(self, futures, on_result=None) -> list:
        with self._lost_worker():
            return super().wait(futures, on_result)

    def run_phase(self, layer, kernel, arena, tasks, run, repeat, on_span=None):
        self._started()
        with self._lost_worker():
            futures = [
                self._pool.submit(
                    worker.process_task,
                    *(arena.name, arena.layout, layer.name, kernel, task, run, repeat),
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
        manager: Any = self._pool._executor_manager_thread  # a thread (typeshed: a wakeup)
        _end_processes(procs)
        self._pool.shutdown(wait=False, cancel_futures=True)
        # The pool's manager thread sees the dead workers and ends; join it so no thread
        # outlives the pool (and none races the interpreter's exit hook, which would print
        # an 'Exception ignored' traceback).
        if manager is not None:
            manager.join(timeout=1)
        self._pool = None

    def close(self) -> None:
        """Ask the workers to stop and wait for them a while; a worker that does not end by
        then (stopped by SIGSTOP, stuck in native code) is ended like Ctrl+C ends it."""
        if self._pool is None:
            return
        self.cancel()
        procs = list((self._pool._processes or {}).values())  # noqa: SLF001
        manager: Any = self._pool._executor_manager_thread
        self._pool.shutdown(wait=False, cancel_futures=True)
        # the sentinels, not join(): the pool's manager thread reaps these processes
        waiting = [p.sentinel for p in procs]
        deadline = time.monotonic() + CLOSE_WAIT_S
        while waiting and time.monotonic() < deadline:
            ready = wait_any(waiting, timeout=max(0.0, deadline - time.monotonic()))
            waiting = [s for s in waiting if s not in ready]
        if waiting:
            _end_processes(procs)
        if manager is not None:
            manager.join(timeout=CLOSE_WAIT_S)
        self._pool = None
