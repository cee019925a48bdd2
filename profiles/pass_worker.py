"""Running backward and training jobs on any executor; each job hands back its spans, phase-named.

The same job runs on the calling thread, on a pool thread, or in a worker
process that attaches the run's shared-memory arena (see `worker`): only the
job's few fields travel.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures.process import BrokenProcessPool

from partui.kernels.passes import Job, run_job

from . import worker
from .events import Span
from .executors import ProcessExecutor, ThreadExecutor, WorkerLost, _wait_all
from .parked_threads import is_parked

# Executors that run all of a phase's jobs at once, one per worker: a training step's tasks
# can then wait for each other inside the phase (see kernels.passes.plan, `together`).
TOGETHER = ("threads", "processes")


def _spans(raw, index: int, tid: int, job: Job, run: int, repeat: int) -> list[Span]:
    """Spans of a job's raw (phase, start, end, units[, step]) tuples; a step, when given, is the
    repeat."""
    return [
        Span(
            worker=index,
            tid=tid,
            start_ns=r[1],
            end_ns=r[2],
            units=r[3],
            task=job.index,
            phase=r[0],
            repeat=r[4] if len(r) > 4 else repeat,
            run=run,
        )
        for r in raw
    ]


def thread_job(
    job: Job, layer: str, kernel: str, arrays: dict, cancel, run: int, repeat: int
) -> list[Span]:
    st = worker._state()  # noqa: SLF001  (the pool thread's index and scratch)
    raw = run_job(job, layer, kernel, arrays, st.scratch, cancel)
    return _spans(raw, st.index, threading.get_native_id(), job, run, repeat)


def process_job(
    job: Job, arena: str, layout: dict, layer: str, kernel: str, run: int, repeat: int
) -> list[Span]:
    arrays = worker._attach(arena, layout)  # noqa: SLF001
    proc = worker._proc  # noqa: SLF001
    raw = run_job(job, layer, kernel, arrays, proc["scratch"], proc["cancel"])
    return _spans(raw, proc["index"], os.getpid(), job, run, repeat)


def run_jobs(
    ex, arena, jobs, layer: str, kernel: str, run: int, repeat: int, on_span=None
) -> list[Span]:
    """Run one phase's jobs on `ex` and wait for all of them; returns their spans."""
    if is_parked(ex) and len(jobs) <= ex.workers:
        # job i on worker i, the calling thread running job 0: no future, one wake-up
        # fewer, and a training step's tasks always run at once
        def share(jobs_w, index, go):
            return [s for job in jobs_w for s in thread_job(job, *args)]

        args = (layer, kernel, arena.arrays, ex.cancel_event, run, repeat)
        shares = [[job] for job in jobs] + [[] for _ in range(ex.workers - len(jobs))]
        spans = ex.run_shares(share, shares)
        for s in spans if on_span else ():
            on_span(s)
        return spans
    if isinstance(ex, ThreadExecutor):
        futures = [
            ex.submit(thread_job, job, layer, kernel, arena.arrays, ex.cancel_event, run, repeat)
            for job in jobs
        ]
    elif isinstance(ex, ProcessExecutor):
        futures = [
            ex.submit(process_job, job, arena.name, arena.layout, layer, kernel, run, repeat)
            for job in jobs
        ]
    else:  # inline and BLAS: the calling thread, worker 0
        spans = []
        for job in jobs:
            got = thread_job(job, layer, kernel, arena.arrays, ex.cancel_event, run, repeat)
            spans += got
            for s in got if on_span else ():
                on_span(s)
        return spans
    if on_span:
        for f in futures:
            f.add_done_callback(
                lambda f: f.exception() is None and [on_span(s) for s in f.result()]
            )
    try:
        results = _wait_all(futures, ex.cancel)
    except BrokenProcessPool as exc:
        ex.kill()
        raise WorkerLost("a worker process was lost (killed or crashed) during the run") from exc
    return [s for got in results for s in got]
