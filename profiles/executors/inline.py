"""Executors that run on the calling thread: tasks one after another (`inline`), or one
vectorized call that BLAS spreads over its own threads (`blas`)."""

from __future__ import annotations

from partui.profiles.executors import worker
from partui.profiles.executors.base import Executor


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
