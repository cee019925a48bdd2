"""The SGD update of a backward or training pass: one range of the flat weights, and the
end of a training step run in one phase, its combine and update shared out among the tasks."""

from __future__ import annotations

import time

import numpy as np

from partui.kernels.plan.pass_axes import COMBINE, UPDATE
from partui.kernels.plan.strategies import split_range
from partui.kernels.runtime.scratch import Cancelled


def sgd_step(kernel, p, g, v, new, lo, hi, lr, momentum, mode) -> None:
    """One SGD step on [lo, hi) of the flat vectors: mode 0 new = p - lr g; 1 p -= lr g;
    2 v = momentum v + g, p -= lr v. The same arithmetic, numpy or native."""
    lr, momentum = np.float32(lr), np.float32(momentum)
    if kernel == "vectorized":
        from partui.kernels.grad import native as native_grad

        native_grad.sgd_range(
            p, g, p if v is None else v, p if new is None else new, lo, hi, lr, momentum, mode
        )
        return
    p, g = p[lo:hi], g[lo:hi]
    if mode == 2:
        v = v[lo:hi]
        v *= momentum
        v += g
        p -= lr * v
    elif mode == 1:
        p -= lr * g
    else:
        np.multiply(g, -lr, out=new[lo:hi])
        new[lo:hi] += p


def update(job, kernel, arrays) -> None:
    """The job's range of the SGD update: into "params" (training, with momentum when set)
    or "params.new" (a profiled step, so every repeat starts from the same weights)."""
    lo, hi = job.span
    mode = (2 if job.momentum else 1) if job.in_place else 0
    sgd_step(
        kernel,
        arrays["params"],
        arrays["grad"],
        arrays.get("velocity"),
        arrays.get("params.new"),
        lo,
        hi,
        job.lr,
        job.momentum,
        mode,
    )


CHUNKS_PER_SLICE = 4  # chunks of the parameters a step's end is shared out in, per slice
# How long a task whose slice is done waits for the others before it leaves them the end of
# the step (the last to arrive does what nobody claimed): half its own slice's time, within
# these bounds. The wait lets the tasks share the combine and update; the bound means no
# task ever waits for one that runs after it on the same worker.
SIBLING_WAIT_S = (0.001, 0.1)


def finish_step(job, kernel, arrays, combiner, scratch, cancel, slice_ns) -> list:
    """After this task's slice: its share of the combine (reduce) and of the update, as
    chunks claimed from a shared counter once all `job.wait` slices are in (see native_grad)."""
    from partui.kernels.grad import native as nat

    counters = arrays["arrive"].view(np.int64)
    if nat.arrive(counters) < job.wait:
        lo, hi = SIBLING_WAIT_S
        limit = min(max(slice_ns / 2e9, lo), hi)
        t0 = time.perf_counter()
        naps = 0
        while counters[0] < job.wait:
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            if time.perf_counter() - t0 > limit:
                return []  # the last task to arrive claims what is left
            time.sleep(0 if naps < 50 else 50e-6)
            naps += 1
    p = arrays["params"]
    size = p.size
    key = ("step.chunks", size, job.wait)
    if key not in scratch.state:
        edges = [lo for lo, _ in split_range(size, CHUNKS_PER_SLICE * job.wait)] + [size]
        scratch.state[key] = (np.array(edges, np.int64), np.empty(len(edges), np.int64))
    bounds, mine = scratch.state[key]
    reduce = combiner.name == "reduce"
    parts = arrays["grad.partials"] if reduce else arrays["grad"].reshape(1, -1)
    t0 = time.perf_counter_ns()
    k = nat.claim_chunks(counters, parts, arrays["grad"], bounds, mine, reduce)
    t1 = time.perf_counter_ns()
    if k == 0:
        return []
    done = int((bounds[mine[:k] + 1] - bounds[mine[:k]]).sum())
    mode = (2 if job.momentum else 1) if job.in_place else 0
    v, new = arrays.get("velocity"), arrays.get("params.new")
    nat.update_chunks(
        p,
        arrays["grad"],
        p if v is None else v,
        p if new is None else new,
        bounds,
        mine,
        k,
        np.float32(job.lr),
        np.float32(job.momentum),
        mode,
    )
    spans = [(COMBINE, t0, t1, job.wait * done)] if reduce else []
    return spans + [(UPDATE, t1, time.perf_counter_ns(), 2 * done)]
