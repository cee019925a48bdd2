"""The pipeline strategy: the network's layers in stages, micro-batches flowing between them.

Each stage runs as one job on its own pool worker (`Executor.run_each` hands them out at
once); bounded queues link a stage to the next, so at most PIPELINE_QUEUE micro-batches wait
between two stages.
"""

from __future__ import annotations

import queue
import threading
import time

from partui.kernels.forward.compute import KERNEL_MODULES, stage_forward
from partui.kernels.model.layers import NETWORK
from partui.kernels.plan import strategies
from partui.kernels.runtime.scratch import Cancelled, Scratch
from partui.profiles.records.events import Span

PIPELINE_QUEUE = 2  # bounded queues between stages
PIPELINE_SLOTS = PIPELINE_QUEUE + 3  # buffers per stage: never reused while a later stage reads one
POLL_S = 0.05  # how often a stage waiting on a queue checks for a cancel


class Pipeline:
    """The stages and micro-batches of one (kernel, batch, workers); its buffers are reused
    from repeat to repeat."""

    def __init__(self, kernel: str, batch: int, workers: int):
        self.key = (kernel, batch, workers)
        self.stages = strategies.pipeline_stages(NETWORK, workers)
        self.micro = strategies.micro_batches(batch, workers)
        self.ops = KERNEL_MODULES[kernel]
        self.scratch = [[Scratch() for _ in range(PIPELINE_SLOTS)] for _ in self.stages]

    def repeat(self, ex, arrays: dict, run: int, rep: int, on_span) -> list[Span]:
        """One pass of every micro-batch through every stage on `ex`; the stages' spans."""
        stages, micro = self.stages, self.micro
        links: list[queue.Queue] = [queue.Queue(PIPELINE_QUEUE) for _ in range(len(stages) - 1)]
        last = len(stages) - 1

        def stage_loop(s: int, here) -> list[Span]:
            flops = sum(sub.flops(1) for sub in stages[s])
            out = []
            for m, (n0, n1) in enumerate(micro):
                inp = arrays["x"][n0:n1] if s == 0 else _get(links[s - 1], here.cancel)
                start = time.perf_counter_ns()
                y = stage_forward(
                    self.ops,
                    stages[s],
                    inp,
                    arrays,
                    self.scratch[s][m % PIPELINE_SLOTS],
                    here.cancel,
                )
                if s == last:
                    arrays["out"][n0:n1] = y
                end = time.perf_counter_ns()
                span = Span(
                    here.index,
                    threading.get_native_id(),
                    start,
                    end,
                    flops * (n1 - n0),
                    task=s * len(micro) + m,
                    phase=s,
                    repeat=rep,
                    run=run,
                )
                on_span(span)
                out.append(span)
                if s < last:
                    _put(links[s], y, here.cancel)
            return out

        return [span for spans in ex.run_each(stage_loop, range(len(stages))) for span in spans]


def _get(q: queue.Queue, cancel):
    while True:
        try:
            return q.get(timeout=POLL_S)
        except queue.Empty:
            if cancel.is_set():
                raise Cancelled() from None


def _put(q: queue.Queue, item, cancel) -> None:
    while True:
        try:
            return q.put(item, timeout=POLL_S)
        except queue.Full:
            if cancel.is_set():
                raise Cancelled() from None
