"""A pool of threads that take tasks as they come (`threads-dynamic`); the parked `threads`
executor builds on it (`threads`)."""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from partui.profiles.executors import worker
from partui.profiles.executors.base import Executor, WorkerIds


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

    def stop_now(self) -> bool:
        self.cancel()
        self.close()
        return True

    def close(self) -> None:
        if self._pool is not None:
            self.cancel()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class DynamicThreadExecutor(ThreadExecutor):
    """The pool above under its own name: idle threads take tasks as they come."""

    name = "threads-dynamic"
