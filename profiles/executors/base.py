"""What every executor is: the protocol the engine and the trainer talk to, the run's arrays
(an arena), and the waiting that lets Ctrl+C through.

An executor runs tasks and hands back one Span per task. What differs between executors
(how jobs run, where spans come from, how a run stops, what a run reports besides its
times) is a method or attribute here with a default that in-process executors keep; the
engine never asks which class it holds.
"""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import FIRST_EXCEPTION, wait
from multiprocessing import shared_memory

import numpy as np

from partui.kernels.forward.compute import release_bound_calls
from partui.profiles.executors import worker
from partui.profiles.records.events import Span
from partui.profiles.records.limits import WorkerLost as WorkerLost  # where it is raised from

WAIT_SLICE_S = 0.05  # how often a waiting caller wakes to notice Ctrl+C


KILL_GRACE_S = 0.3  # after SIGTERM, how long workers get to end before SIGKILL


SETTLE_S = 2.0  # after a failure, how long to let sibling tasks stop before the pool is reused


STARTUP_TIMEOUT_S = 60.0  # a process pool that is not up by then is reported, not waited for


STARTUP_PER_WORKER_S = 0.5  # ...plus this per worker, with room for a busy machine


def startup_timeout(workers: int) -> float:
    return STARTUP_TIMEOUT_S + STARTUP_PER_WORKER_S * workers


# worker index -> native thread id (or pid); a tuple when a worker is several threads taking
# turns (the CPU sampler sums them)
WorkerIds = dict[int, int | tuple[int, ...]]


def first_line(exc: BaseException) -> str:
    """An error's message in one line (its first), or its type's name."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


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
    # One at a time: an idle process pool or cluster holds memory and pids, so making one
    # closes the others of its name.
    exclusive = False
    # All of a phase's jobs start at once, one per worker, so a training step's tasks may
    # wait for each other inside a phase (kernels.grad.jobs.plan, `together`).
    runs_jobs_together = False
    # Job i on worker i, the calling thread being worker 0 (run_shares).
    runs_shares = False
    # A worker's CPU time is its tasks' alone, so a task's on-CPU ratio means something.
    measures_task_cpu = True
    # A training step runs as one call of train_step (the weights live on the workers),
    # not as the plan's phases of jobs.
    runs_whole_steps = False

    def __init__(self, workers: int):
        self.workers = workers
        self.startup_ms = 0.0
        self.cancel_event = threading.Event()

    @classmethod
    def made(cls, workers: int, scheduler: str = "") -> Executor:
        """A new executor of this class; `scheduler` matters to cluster executors only."""
        return cls(workers)

    @classmethod
    def key(cls, workers: int, scheduler: str = "") -> tuple:
        """What tells two executors of this class apart (the engine keeps one per key)."""
        return (cls.name, workers)

    @classmethod
    def refusal(cls, workers: int, scheduler: str = "") -> str | None:
        """Why `workers` of these cannot start here (None: they can), said before anything
        starts."""
        return None

    def prepare_run(self) -> None:
        """Before a run's first event, after start(): bring the executor's view of its
        workers up to date."""

    def collect_spans(self, spans: list[Span], on_span=None) -> list[Span]:
        """After a repeat's timing: the repeat's spans (an executor whose workers keep their
        own record reads it here)."""
        return spans

    def run_info(self) -> dict | None:
        """What a run on this executor reports besides its times (None: nothing)."""
        return None

    def train_step(self, cfg, flat, x, labels, lr: float, run: int, repeat: int):
        """One training step as a whole (runs_whole_steps): (gradient, new weights, per-shard
        (loss, correct), spans, figures)."""
        raise NotImplementedError(f"executor {self.name!r} runs a step as phases of jobs")

    def step_summary(self, steps: list[dict], grad_bytes: int, combine: str) -> dict:
        """The figures of whole training steps (train_step's), summarised for a run's report."""
        return {}

    def stop_now(self) -> bool:
        """Ctrl+C: stop the workers at once. True: this executor cannot be used again (the
        engine drops it); threads stop at their next cancel check."""
        self.cancel()
        return False

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
                # a cancelled future (Ctrl+C) has no exception to ask for: asking raises
                f.add_done_callback(
                    lambda f: not f.cancelled() and f.exception() is None and on_result(f.result())
                )
        return wait_all(futures, self.cancel)

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


def wait_all(futures, cancel):
    """Wait for every future, waking often so Ctrl+C reaches the caller; the first error is
    raised."""
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=WAIT_SLICE_S, return_when=FIRST_EXCEPTION)
        error = next((f.exception() for f in done if f.exception() is not None), None)
        if error is not None:
            cancel()  # siblings stop at their next check
            # ...and are let stop, so the next run does not share the pool with them
            wait(pending, timeout=SETTLE_S)
            try:
                raise error
            finally:
                # The error's traceback holds this frame, whose futures hold the error: a
                # cycle, kept until a full garbage collection. (A caller that holds the
                # futures makes another: a run's end breaks those, repeats.let_go_of_frames.)
                error = futures = done = pending = None
    return [f.result() for f in futures]
