"""What a Dask worker runs: one batch shard of a layer's forward pass, arrays in, array out.

Module-level functions of plain arrays, so Dask pickles them by reference and a worker needs
nothing of partui's pools or shared memory. Each worker keeps one scratch per thread.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import numpy as np

from .compute import run_task
from .layers import get_layer
from .scratch import Scratch
from .strategies import Task

_local = threading.local()


def _scratch() -> Scratch:
    if not hasattr(_local, "scratch"):
        _local.scratch = Scratch()
    return _local.scratch


def worker_clock(dask_worker) -> tuple[float, float, float]:
    """(its wall clock, Dask's estimate of its lag behind the scheduler, its smoothed round
    trip to the scheduler), in seconds: run by `Client.run`, which passes the worker."""
    return time.time(), float(dask_worker.scheduler_delay), float(dask_worker.latency)


def forward_shard(
    layer_name: str, kernel: str, task: Task, x: np.ndarray, params: dict[str, np.ndarray]
) -> np.ndarray:
    """The output of `task` (a batch split) for its input shard `x` (the task's samples only)."""
    layer = get_layer(layer_name)
    n = task.batch[1] - task.batch[0]
    if x.shape[0] != n:
        raise ValueError(f"shard of {x.shape[0]} samples for a task of {n}")
    out = np.empty(layer.out_array_shape(n), dtype=np.float32)
    arrays = {"x": x, "out": out, **params}
    run_task(layer, kernel, arrays, replace(task, batch=(0, n)), _scratch())
    return out


def train_shard(
    kernel: str, x: np.ndarray, labels: np.ndarray, params: np.ndarray, scale: float
) -> tuple[np.ndarray, float, int, int, int]:
    """A shard's part of a data-parallel training step: forward, loss and backward of its
    samples with the step's weights (a flat vector). Returns (its gradient, flat, scaled by
    `scale`; summed loss; correct predictions; forward ns; backward ns): the durations are
    the worker's own, so they need no clock of ours."""
    from . import training

    layout = training.NETWORK_LAYOUT
    grad = np.empty(params.shape, np.float32)
    t0 = time.perf_counter_ns()
    loss, correct, forward_end = training.step_grads(
        kernel,
        x,
        labels,
        training.views(params, layout),
        training.views(grad, layout),
        scale,
        _scratch(),
    )
    t1 = time.perf_counter_ns()
    return grad, float(loss), int(correct), forward_end - t0, t1 - forward_end


def add_gradients(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """One node of the tree reduction of shard gradients (runs where `a` is)."""
    return a + b


def part(result: tuple, index: int):
    """One item of a task's tuple result, as its own Dask result (a gradient stays where it
    was made; only the small statistics travel)."""
    return result[index]
