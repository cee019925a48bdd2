"""What a Dask worker runs: one batch shard of a layer's forward pass, arrays in, array out.

Module-level functions of plain arrays, so Dask pickles them by reference and a worker needs
nothing of partui's pools or shared memory. Each worker keeps one scratch per thread.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import numpy as np

from partui.kernels.forward.compute import run_task
from partui.kernels.model.layers import get_layer
from partui.kernels.plan.strategies import Task
from partui.kernels.runtime.scratch import Scratch

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
    from partui.kernels.grad import training

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


# ---- `partui train --executor dask`: the weights stay on the workers ---------------------
# Each worker holds the run's data set, its own copy of the weights and the momentum buffer,
# keyed by the run's token. A step moves only sample indices out and gradients around; every
# worker applies the same update to the same weights, so the copies stay bit-identical (the
# trainer checks their digests after each epoch).
_runs: dict[str, dict[str, np.ndarray]] = {}


def _held(token: str) -> dict[str, np.ndarray]:
    try:
        return _runs[token]
    except KeyError:
        raise RuntimeError(
            "this Dask worker holds no weights of the training run (restarted or new)"
        ) from None


def train_setup(token: str, kernel: str, x: np.ndarray, y: np.ndarray, params: np.ndarray) -> int:
    """The run's data set (shared with the scattered copy) and weights on this worker; one
    step on two samples (its gradient dropped), so loading the kernels is part of the set-up,
    not of the first timed step. Returns the worker's pid."""
    import os

    train_shard(kernel, x[:2], y[:2], np.array(params, np.float32), 1.0)
    _runs[token] = {
        "x": x,
        "y": y,
        "params": np.array(params, np.float32),
        "velocity": np.zeros(params.shape, np.float32),
    }
    return os.getpid()


def train_rows(
    token: str, kernel: str, rows: np.ndarray, scale: float
) -> tuple[np.ndarray, float, int, int, int]:
    """`train_shard` on the samples `rows` of the data set this worker holds, with its weights."""
    held = _held(token)
    x = np.take(held["x"], rows, axis=0)
    return train_shard(kernel, x, held["y"][rows], held["params"], scale)


def train_apply(token: str, kernel: str, grad: np.ndarray, lr: float, momentum: float) -> int:
    """The SGD step (with momentum when set) on this worker's weights; its duration in ns."""
    from partui.kernels.grad.sgd import sgd_step

    held = _held(token)
    t0 = time.perf_counter_ns()
    p = held["params"]
    mode = 2 if momentum else 1
    sgd_step(kernel, p, grad, held["velocity"], None, 0, p.size, lr, momentum, mode)
    return time.perf_counter_ns() - t0


def train_weights(token: str) -> np.ndarray:
    return _held(token)["params"]


def train_digest(token: str) -> str:
    """A digest of this worker's weights and momentum: equal on every worker after a step."""
    import hashlib

    held = _held(token)
    return hashlib.sha1(held["params"].tobytes() + held["velocity"].tobytes()).hexdigest()


def train_drop(token: str) -> None:
    _runs.pop(token, None)
