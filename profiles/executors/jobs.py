"""Running backward and training jobs on any executor; each job hands back its spans, phase-named.

The same job runs on the calling thread, on a pool thread, or in a worker
process that attaches the run's shared-memory arena (see `worker`): only the
job's few fields travel.
"""

from __future__ import annotations

import os
import threading

from partui.kernels.grad.execution import run_job
from partui.kernels.grad.jobs import Job
from partui.profiles.executors import worker
from partui.profiles.records.events import Span


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


def thread_job(item: tuple, here: worker.Here) -> list[Span]:
    """A job on a pool thread or the calling thread; `item` is (job, layer, kernel, arrays,
    run, repeat)."""
    job, layer, kernel, arrays, run, repeat = item
    raw = run_job(job, layer, kernel, arrays, here.scratch, here.cancel)
    return _spans(raw, here.index, threading.get_native_id(), job, run, repeat)


def process_job(item: tuple, here: worker.Here) -> list[Span]:
    """A job in a worker process; `item` is (job, arena name, layout, layer, kernel, run,
    repeat): the arrays are attached from shared memory, never pickled."""
    job, arena, layout, layer, kernel, run, repeat = item
    arrays = worker.attach(arena, layout)
    raw = run_job(job, layer, kernel, arrays, here.scratch, here.cancel)
    return _spans(raw, here.index, os.getpid(), job, run, repeat)


def run_jobs(
    ex, arena, jobs, layer: str, kernel: str, run: int, repeat: int, on_span=None
) -> list[Span]:
    """Run one phase's jobs on `ex` and wait for all of them; returns their spans."""
    if ex.runs_shares and len(jobs) <= ex.workers:
        # job i on worker i, the calling thread running job 0: no future, one wake-up
        # fewer, and a training step's tasks always run at once
        def share(jobs_w, index, go):
            here = worker.here(ex.cancel_event)
            return [s for job in jobs_w for s in thread_job((job, *args), here)]

        args = (layer, kernel, arena.arrays, run, repeat)
        shares = [[job] for job in jobs] + [[] for _ in range(ex.workers - len(jobs))]
        spans = ex.run_shares(share, shares)
        for s in spans if on_span else ():
            on_span(s)
        return spans
    items: list[tuple]
    if ex.processes:
        fn, items = (
            process_job,
            [(j, arena.name, arena.layout, layer, kernel, run, repeat) for j in jobs],
        )
    else:
        fn, items = thread_job, [(j, layer, kernel, arena.arrays, run, repeat) for j in jobs]

    def each(spans: list[Span]) -> None:
        for s in spans:
            on_span(s)

    results = ex.run_each(fn, items, each if on_span else None)
    return [s for got in results for s in got]
