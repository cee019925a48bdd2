"""The timed-repeat loop every run goes through: warm-ups, timed repeats, the cancel check,
the spans and CPU marks of the timed repeats, and how a run that stops early is reported.

Forward runs (engine), backward and training passes (passes) and the Dask training step
(dask_train) differ only in what one repeat does.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator

from partui.kernels.runtime.scratch import Cancelled
from partui.profiles.executors.base import WorkerLost
from partui.profiles.records.events import RepeatDone, RunCancelled, RunFailed, RunFinished, Span
from partui.profiles.records.limits import RunCancelledError
from partui.profiles.run.sampler import on_cpu_ratios
from partui.profiles.system import blas, interrupts


class Timed:
    """What the timed repeats left: wall times (ms), start stamps (ns), spans, and the
    workers' CPU times at the start and end of the timed stretch (when sampled)."""

    def __init__(self) -> None:
        self.times_ms: list[float] = []
        self.starts_ns: list[int] = []
        self.spans: list[Span] = []
        self.cpu_marks: list = []

    def on_cpu_ratio(self, workers: int, spans: list[Span] | None = None) -> list[float]:
        """Each worker's CPU time over its busy time in the timed repeats (empty without
        both CPU marks). `spans`: the compute spans, when not all of them are."""
        if len(self.cpu_marks) != 2:
            return []
        total_busy = [0.0] * workers  # summed over all timed repeats, as the CPU marks are
        for span in self.spans if spans is None else spans:
            if 0 <= span.worker < workers:
                total_busy[span.worker] += span.duration_ns / 1e6
        return on_cpu_ratios(self.cpu_marks[0], self.cpu_marks[1], total_busy)


@contextlib.contextmanager
def timing_conditions(ex) -> Iterator[None]:
    """What a run's timed repeats run under: BLAS threads a threaded call left spinning
    waited out first (blas.settle), BLAS at the executor's thread count, the calling thread
    placed where it runs as worker 0 (ex.placed)."""
    blas.settle()
    with blas.limit(ex.blas_threads), ex.placed():
        yield


def timed_repeats(
    run: int,
    cfg,
    cancel,
    emit: Callable,
    one: Callable[[int], list[Span]],
    before: Callable[[int], None] | None = None,
    after: Callable[[int, list[Span]], list[Span]] | None = None,
    sampler=None,
) -> Timed:
    """Repeats -cfg.warmup..cfg.repeats-1 of `one(rep)` (its spans), each timed on its own.

    `before(rep)`: untimed preparation; `after(rep, spans)`: untimed, after the timing (the
    spans it returns are the repeat's). The cancel flag is checked before every repeat, so
    work that never checks it still stops there. Only repeats >= 0 count.
    """
    timed = Timed()
    for rep in range(-cfg.warmup, cfg.repeats):
        if cancel.is_set():
            raise Cancelled()
        interrupts.raise_if_swallowed()
        if before is not None:
            before(rep)
        if rep == 0 and sampler:
            timed.cpu_marks.append(sampler.worker_cpu())
        t0 = time.perf_counter_ns()
        spans = one(rep)
        wall = time.perf_counter_ns() - t0
        if after is not None:
            spans = after(rep, spans)
        emit(RepeatDone(run, rep, wall, t0))
        if rep >= 0:
            timed.times_ms.append(wall / 1e6)
            timed.starts_ns.append(t0)
            timed.spans += spans
    if sampler:
        timed.cpu_marks.append(sampler.worker_cpu())
    return timed


@contextlib.contextmanager
def stopped_runs_reported(engine, ex, run: int, cfg, emit: Callable) -> Iterator[None]:
    """A run that stops early says so: cancelled (RunCancelledError), Ctrl+C (the workers
    stopped at once, then KeyboardInterrupt again), a lost worker (RunFailed, then raised)."""
    try:
        yield
    except Cancelled:
        emit(RunCancelled(run, cfg))
        raise RunCancelledError("run cancelled") from None
    except KeyboardInterrupt:
        interrupts.handled()
        engine.stop_now(ex)
        emit(RunCancelled(run, cfg))
        raise
    except WorkerLost as exc:
        emit(RunFailed(run, str(exc), config=cfg))
        raise


def let_go_of_frames(exc: BaseException | None) -> None:
    """A run that stopped early: the frames its error passed through (and those of the errors
    behind it) hold the run's arrays, and the error may sit in a reference cycle (kept by a
    future, or by a list in one of those frames) that only a full garbage collection
    breaks, long after. Their local variables go now; the tracebacks keep their lines."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        tb = exc.__traceback__
        while tb is not None:
            try:
                tb.tb_frame.clear()
            except RuntimeError:  # a frame still running (the caller's): it keeps its own
                pass
            tb = tb.tb_next
        exc = exc.__cause__ or exc.__context__


def report(result, run: int, err: float, tol: float, emit: Callable, what: str = "output"):
    """Emit the end of a verified run: finished, or failed with the error beyond tolerance
    (or the NaN in `what`) as its one line. Returns the result."""
    if result.ok:
        emit(RunFinished(run, result))
    else:
        result.error = (
            f"max abs error {err:.3g} exceeds tolerance {tol:.3g}"
            if math.isfinite(err)
            else f"the {what} holds NaN or infinite values"
        )
        emit(RunFailed(run, result.error, result, result.config))
    return result
