"""Running one job of a backward or training pass: its kernels on its slice of the run's
arrays, returning its spans as (phase, start_ns, end_ns, units[, step])."""

from __future__ import annotations

import time

import numpy as np

from partui.kernels.grad import training
from partui.kernels.grad.combine import COMBINERS
from partui.kernels.grad.jobs import Job, param_layout
from partui.kernels.grad.sgd import finish_step, sgd_step, update
from partui.kernels.model.layers import get_layer
from partui.kernels.plan.pass_axes import BACKWARD, COMBINE, FORWARD, UPDATE
from partui.kernels.runtime.scratch import Cancelled, Scratch


def run_job(
    job: Job, layer_name: str, kernel: str, arrays: dict, scratch: Scratch, cancel=None
) -> list[tuple[int, int, int, int]]:
    """Run `job`; returns its spans as (phase, start_ns, end_ns, units)."""
    if cancel is not None and cancel.is_set():
        raise Cancelled()
    start = time.perf_counter_ns()
    if job.kind == "combine":
        COMBINERS[job.combine].reduce(arrays, job.acc, *job.span, native=kernel == "vectorized")
        return [(COMBINE, start, time.perf_counter_ns(), job.units)]
    if job.kind == "update":
        update(job, kernel, arrays)
        return [(UPDATE, start, time.perf_counter_ns(), job.units)]
    if job.kind == "eval":
        return _eval_job(job, arrays, scratch, start)
    if job.kind == "hogwild":
        return _hogwild_job(job, kernel, arrays, scratch, cancel)
    layer = get_layer(layer_name)
    combiner = COMBINERS[job.combine]
    layout = param_layout(layer)
    params = training.views(arrays["params"], layout) if layout else {}
    if job.kind == "train":
        return _train_job(job, kernel, arrays, params, layout, combiner, scratch, cancel, start)
    return _backward_job(
        job, layer, kernel, arrays, params, layout, combiner, scratch, cancel, start
    )


def _deposit(job, combiner, arrays, buf, spans) -> None:
    if job.slot is None:
        return
    t0 = time.perf_counter_ns()
    combiner.deposit(arrays, job.acc, buf, job.lock)
    if combiner.name == "locked":  # the wait for the lock and the add under it
        spans.append((COMBINE, t0, time.perf_counter_ns(), buf.size))


def _samples(arrays, offset: int, n0: int, n1: int, scratch: Scratch):
    """A batch gathered from the data set: (x, labels) of the samples order[offset + n0 : offset +
    n1]."""
    idx = arrays["order"][offset + n0 : offset + n1].astype(np.int64)
    x = scratch.get("train.x", (len(idx), *arrays["data.x"].shape[1:]))
    np.take(arrays["data.x"], idx, axis=0, out=x)
    return x, arrays["data.y"][idx]


def _train_job(job, kernel, arrays, params, layout, combiner, scratch, cancel, start):
    n0, n1 = job.batch
    dst = arrays["grad"] if job.slot is None else combiner.target(arrays, "grad", job.slot, scratch)
    grads = training.views(dst, layout)
    if job.offset >= 0:
        x, labels = _samples(arrays, job.offset, n0, n1, scratch)
    else:
        x, labels = arrays["x"][n0:n1], arrays["labels"][n0:n1]
    loss, correct, fend = training.step_grads(
        kernel, x, labels, params, grads, job.scale, scratch, cancel
    )
    bend = time.perf_counter_ns()
    arrays["stats"][job.index] = (loss, correct)
    fwd = job.units // 3
    spans = [(FORWARD, start, fend, fwd), (BACKWARD, fend, bend, job.units - fwd)]
    _deposit(job, combiner, arrays, dst, spans)
    if job.wait:  # the step in one phase: this task's share of the combine and the update
        spans += finish_step(job, kernel, arrays, combiner, scratch, cancel, bend - start)
    return spans


def _backward_job(job, layer, kernel, arrays, params, layout, combiner, scratch, cancel, start):
    ops = training.GRAD_MODULES[kernel]
    n0, n1 = job.batch
    x, gy, gx = arrays["x"][n0:n1], arrays["gy"][n0:n1], arrays["gx"][n0:n1]
    kind = layer.kind
    spans: list = []
    if kind in ("pool", "gelu", "logsoftmax"):
        if job.channels is not None:
            c0, c1 = job.channels
            x, gy, gx = x[:, c0:c1], gy[:, c0:c1], gx[:, c0:c1]
        if kind == "pool":
            ops.pool_backward(x, gy, gx, scratch, cancel)
        elif kind == "gelu":
            ops.gelu_backward(x, gy, gx, scratch, cancel)
        else:
            ops.logsoftmax_backward(x, gy, gx, scratch, cancel)
        return [(BACKWARD, start, time.perf_counter_ns(), job.units)]

    # conv and linear: parameter gradients, and partial sums to combine
    if job.acc == "grad" and job.slot is not None:  # batch split: partial parameter gradients
        pdst = combiner.target(arrays, "grad", job.slot, scratch)
        gdst = gx
    elif job.acc == "gx" and job.slot is not None:  # channel split: partial input gradients
        pdst = arrays["grad"]
        gdst = combiner.target(arrays, "gx", job.slot, scratch)
    else:
        pdst, gdst = arrays["grad"], gx
    grads = training.views(pdst, layout)
    w, b, gw, gb = params["weight"], params["bias"], grads["weight"], grads["bias"]
    if kind == "linear":
        x = x.reshape(x.shape[0], -1)
    pre = None
    if job.channels is not None:
        c0, c1 = job.channels
        w, b, gy, gw, gb = w[c0:c1], b[c0:c1], gy[:, c0:c1], gw[c0:c1], gb[c0:c1]
    elif job.group is not None:
        g0, g1 = job.group
        if kind == "linear" and layer.gelu:  # GELU' needs the whole pre-activation
            pre = scratch.get("pass.pre", gy.shape)
            np.matmul(x, w.T, out=pre)
            pre += b
        x, w, gdst, gw = x[:, g0:g1], w[:, g0:g1], gdst[:, g0:g1], gw[:, g0:g1]
        if g0 != 0:  # one task writes the bias gradient
            gb = scratch.get("pass.gb", gb.shape)
    if kind == "conv":
        ops.conv_backward(x, w, gy, gdst, gw, gb, scratch, cancel)
    else:
        ops.linear_backward(
            x,
            w,
            b,
            gy,
            layer.gelu,
            gdst.reshape(x.shape[0], -1) if gdst.ndim > 2 else gdst,
            gw,
            gb,
            scratch,
            cancel,
            pre=pre,
        )
    spans.append((BACKWARD, start, time.perf_counter_ns(), job.units))
    _deposit(job, combiner, arrays, pdst if job.acc == "grad" else gdst, spans)
    return spans


def _hogwild_job(job, kernel, arrays, scratch, cancel):
    """Hogwild!: `steps` SGD steps on this worker's batches, each written into the shared weights
    with no lock (another worker may be reading or writing them at the same moment)."""
    layout = training.NETWORK_LAYOUT
    flat = arrays["params"]
    params = training.views(flat, layout)
    g = scratch.get("hogwild.grad", flat.shape)
    grads = training.views(g, layout)
    lr = np.float32(job.lr)
    size = job.batch[1]
    spans = []
    stamped = StampedWrites(arrays, scratch) if job.stamp else None
    for k in range(job.steps):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        step = job.step0 + k
        t0 = time.perf_counter_ns()
        if stamped is not None:  # the versions this step's gradient is computed from
            stamped.read()
        x, labels = _samples(arrays, job.offset + k * size, 0, size, scratch)
        loss, correct, fend = training.step_grads(
            kernel, x, labels, params, grads, 1.0 / size, scratch, cancel
        )
        bend = time.perf_counter_ns()
        # no lock: updates may interleave with other workers' reads and writes; each
        # worker keeps its own velocity: only the weights are shared
        v = _velocity(scratch, job.token, g.shape) if job.momentum else None
        if stamped is None:
            sgd_step(
                kernel, flat, g, v, None, 0, flat.size, lr, job.momentum, 2 if job.momentum else 1
            )
        else:
            stamped.write(flat, g, v, lr, job.momentum, step)
        end = time.perf_counter_ns()
        arrays["losses"][step] = loss / size
        arrays["hits"][step] = correct
        fwd = job.units // 3
        spans += [
            (FORWARD, t0, fend, fwd, step),
            (BACKWARD, fend, bend, job.units - fwd, step),
            (UPDATE, bend, end, 2 * flat.size, step),
        ]
    return spans


class StampedWrites:
    """A worker's stamped Hogwild! writes (stamps): the versions read before a step, then the
    update block by block in one native call, its staleness and overlaps into the run's
    "staleness" and "overlaps" at the step's row."""

    def __init__(self, arrays, scratch: Scratch):
        from partui.kernels.grad import stamps, stamps_native

        self.native = stamps_native
        self.counters = arrays["versions"].view(np.int64)
        self.staleness, self.overlaps = arrays["staleness"], arrays["overlaps"]
        self.edges = stamps.blocks(training.NETWORK_LAYOUT)
        n = len(self.edges) - 1
        if "stamps" not in scratch.state:
            scratch.state["stamps"] = (np.zeros(n, np.int64), np.zeros(n, np.int64))
        self.seen, self.stale = scratch.state["stamps"]

    def read(self) -> None:
        self.native.read_versions(self.counters, self.seen)

    def write(self, flat, g, v, lr, momentum, step: int) -> None:
        mode = 2 if momentum else 1
        overlapped = self.native.stamped_sgd(
            flat,
            g,
            flat if v is None else v,
            self.counters,
            self.edges,
            self.seen,
            self.stale,
            np.float32(lr),
            np.float32(momentum),
            mode,
        )
        self.staleness[step] = self.stale
        self.overlaps[step] = overlapped


def _velocity(scratch: Scratch, token: str, shape) -> np.ndarray:
    """This worker's momentum buffer for the training run `token` (zero at the run's first step)."""
    if scratch.state.get("velocity.run") != token:
        scratch.state["velocity.run"] = token
        scratch.state["velocity"] = np.zeros(shape, np.float32)
    return scratch.state["velocity"]


def _eval_job(job, arrays, scratch, start):
    """Correct predictions of the test samples [batch) with the current weights, into
    "eval"[index]."""
    n0, n1 = job.batch
    params = training.views(arrays["params"], training.NETWORK_LAYOUT)
    pred = training.predict(arrays["test.x"][n0:n1], params, scratch)
    arrays["eval"][job.index] = int((pred == arrays["test.y"][n0:n1].astype(np.int64)).sum())
    return [(FORWARD, start, time.perf_counter_ns(), job.units)]
