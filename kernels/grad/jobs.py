"""The pass axis: which passes a layer has, how a strategy cuts them into jobs, and running one job.

- `forward`: the layer's output (kernels.compute).
- `backward`: one layer; given its input and an upstream gradient, the input
  gradient and the parameter gradients.
- `train`: the network; forward, NLL loss, backward, gradient combination, SGD update.

A job may report several spans (a training task's forward, backward and, with
the locked combiner, its add under the lock), each named by its phase.

The run's arrays (all float32): "x", "params" (flat, see training.param_layout),
"grad" (flat, the combined gradient), and per pass: "gy"/"gx" (backward),
"labels"/"stats"/"params.new" (train), plus the combiner's partial buffers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from partui.kernels.grad import training
from partui.kernels.grad.combine import COMBINERS
from partui.kernels.model.layers import Layer, get_layer, prod
from partui.kernels.plan.pass_axes import (
    BACKWARD,
    BACKWARD_BY_KIND,  # noqa: F401 (re-exported)
    COMBINE,
    FORWARD,
    PASSES,  # noqa: F401 (re-exported)
    PHASES,  # noqa: F401
    TRAIN_STRATEGIES,  # noqa: F401 (re-exported)
    UPDATE,
    not_applicable,  # noqa: F401 (re-exported)
    phase_name,  # noqa: F401 (re-exported)
)
from partui.kernels.plan.strategies import split_range
from partui.kernels.runtime.scratch import Cancelled, Scratch

DEFAULT_LR = 0.05
STATS = 2  # per training task: summed loss, correct predictions


@dataclass(frozen=True)
class Job:
    """One piece of a backward or training pass."""

    index: int
    kind: str  # backward | train | combine | update
    batch: tuple[int, int] = (0, 0)
    channels: tuple[int, int] | None = None  # output channels / features (channel split)
    group: tuple[int, int] | None = None  # input channels / features (filter split)
    slot: int | None = None  # the combiner's partial buffer; None: write the accumulator itself
    acc: str = "grad"  # what the slot's partial sums add up to ("grad" or "gx")
    span: tuple[int, int] = (0, 0)  # flat range (combine, update)
    combine: str = "reduce"
    lock: str | None = None
    scale: float = 1.0  # 1 / batch: the loss is the batch mean
    lr: float = DEFAULT_LR
    in_place: bool = False  # update: into "params" (training) or "params.new" (a profiled step)
    momentum: float = 0.0  # in-place updates: v = momentum * v + g; p -= lr * v ("velocity")
    units: int = 0
    # training runs: samples come from the data set ("data.x", "data.y") in the order
    # "order", from `offset` on; a hogwild job runs `steps` SGD steps of batch[1] samples
    offset: int = -1
    steps: int = 1
    step0: int = 0  # the first step's index in the epoch (hogwild: where its loss goes)
    token: str = ""  # the training run: a hogwild worker keeps its own velocity per run
    # a training step as one phase: after its slice, the task takes its share of the combine
    # and the update once all `wait` slices are in ("arrive"; see _finish_step)
    wait: int = 0

    @property
    def phase(self) -> int:
        return {
            "backward": BACKWARD,
            "train": FORWARD,
            "combine": COMBINE,
            "update": UPDATE,
            "hogwild": FORWARD,
            "eval": FORWARD,
        }[self.kind]


@dataclass
class PassPlan:
    phases: list[list[Job]]
    shapes: dict[str, tuple[int, ...]]  # every array of the run
    zero: tuple[str, ...] = ()  # accumulators to clear before each pass (the locked combiner's)

    @property
    def jobs(self) -> list[Job]:
        return [j for phase in self.phases for j in phase]


def param_layout(layer: Layer) -> dict:
    """Flat layout of `layer`'s parameters ("weight", "bias"), or the network's ("conv1.weight",
    ...)."""
    if layer.kind == "network":
        return training.NETWORK_LAYOUT
    return training.param_layout((layer,), prefix=False) if layer.has_params else {}


def backward_flops(layer: Layer, batch: int) -> int:
    """Input and parameter gradients of a GEMM layer cost two forwards; an elementwise one, one."""
    return layer.flops(batch) * (2 if layer.has_params else 1)


def plan(
    layer: Layer,
    pass_kind: str,
    strategy: str,
    batch: int,
    workers: int,
    combine: str = "reduce",
    lr: float = DEFAULT_LR,
    lock: str | None = None,
    in_place: bool = False,
    momentum: float = 0.0,
    together: bool = False,
) -> PassPlan:
    """The pass cut into phases of jobs.

    `together`: the executor runs a phase's jobs at once (a thread or process each). A
    training step is then one phase: each task, once its slice is done, waits a little for
    the others (in shared memory), then they share out the combine and the update in
    chunks; otherwise a combine phase and an update phase follow, each a round trip
    through the executor. Should the tasks run one after the other after all, the last
    one does the whole end of the step: slower, never stuck.
    """
    combiner = COMBINERS[combine]
    layout = param_layout(layer)
    nparams = training.layout_size(layout)
    common: dict[str, Any] = dict(combine=combine, lock=lock)
    shapes: dict[str, tuple[int, ...]] = {"x": layer.in_array_shape(batch)}
    if nparams:
        shapes.update({"params": (nparams,), "grad": (nparams,)})
    if pass_kind == "train":
        slices = split_range(batch, workers) if strategy == "batch" else [(0, batch)]
        slots = len(slices) > 1
        fused = together and slots
        per_sample = layer.flops(1) + backward_flops(layer, 1)
        jobs = [
            Job(
                i,
                "train",
                nb,
                slot=i if slots else None,
                scale=1.0 / batch,
                units=per_sample * (nb[1] - nb[0]),
                lr=lr,
                in_place=in_place,
                momentum=momentum if in_place else 0.0,
                wait=len(slices) if fused else 0,
                **common,
            )
            for i, nb in enumerate(slices)
        ]
        shapes.update({"labels": (batch,), "stats": (len(slices), STATS), "params.new": (nparams,)})
        if in_place and momentum:
            shapes["velocity"] = (nparams,)
        phases = [jobs]
        zero = ("grad",) if slots and combine == "locked" else ()
        if slots:
            shapes.update(combiner.partial_shapes("grad", (nparams,), len(slices)))
        if fused:
            shapes["arrive"] = (4,)  # two int64 counters: slices done, chunks claimed
            return PassPlan(phases, shapes, (*zero, "arrive"))
        if slots:
            reduce = [
                Job(i, "combine", span=r, units=len(slices) * (r[1] - r[0]), **common)
                for i, r in enumerate(combiner.reduce_ranges(nparams, workers))
            ]
            if reduce:
                phases.append(reduce)
        phases.append(
            [
                Job(
                    i,
                    "update",
                    span=r,
                    lr=lr,
                    units=2 * (r[1] - r[0]),
                    in_place=in_place,
                    momentum=momentum if in_place else 0.0,
                    **common,
                )
                for i, r in enumerate(split_range(nparams, workers))
            ]
        )
        return PassPlan(phases, shapes, zero)

    # backward of one layer
    shapes.update({"gy": layer.out_array_shape(batch), "gx": layer.in_array_shape(batch)})
    total = backward_flops(layer, batch)
    nch, nin = layer.out_shape[0], layer.in_shape[0]
    regions: list[dict[str, Any]]
    if strategy == "batch":
        regions = [dict(batch=nb) for nb in split_range(batch, workers)]
        acc = "grad" if nparams else None
    elif strategy == "channel":
        regions = [dict(batch=(0, batch), channels=ch) for ch in split_range(nch, workers)]
        acc = "gx" if nparams else None  # every output channel adds to every input gradient
    elif strategy == "filter":
        regions = [dict(batch=(0, batch), group=g) for g in split_range(nin, workers)]
        acc = None
    else:
        regions = [dict(batch=(0, batch))]
        acc = None
    slots = acc is not None and len(regions) > 1

    def share(r):
        frac = (r["batch"][1] - r["batch"][0]) / batch
        for key, whole in (("channels", nch), ("group", nin)):
            if r.get(key):
                frac *= (r[key][1] - r[key][0]) / whole
        return int(total * frac)

    jobs = [
        Job(
            i,
            "backward",
            slot=i if slots else None,
            acc=acc or "grad",
            units=share(r),
            **common,
            **r,
        )
        for i, r in enumerate(regions)
    ]
    phases = [jobs]
    locked: tuple[str, ...] = ()
    if slots:
        assert acc is not None
        locked = (acc,) if combine == "locked" else ()
        size = prod(shapes[acc])
        shapes.update(combiner.partial_shapes(acc, shapes[acc], len(regions)))
        reduce = [
            Job(i, "combine", acc=acc, span=r, units=len(regions) * (r[1] - r[0]), **common)
            for i, r in enumerate(combiner.reduce_ranges(size, workers))
        ]
        if reduce:
            phases.append(reduce)
    return PassPlan(phases, shapes, locked)


# ---- running one job --------------------------------------------------------------


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
        _update(job, kernel, arrays)
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


def _update(job, kernel, arrays) -> None:
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


def _finish_step(job, kernel, arrays, combiner, scratch, cancel, slice_ns) -> list:
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
        spans += _finish_step(job, kernel, arrays, combiner, scratch, cancel, bend - start)
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
    for k in range(job.steps):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        step = job.step0 + k
        t0 = time.perf_counter_ns()
        x, labels = _samples(arrays, job.offset + k * size, 0, size, scratch)
        loss, correct, fend = training.step_grads(
            kernel, x, labels, params, grads, 1.0 / size, scratch, cancel
        )
        bend = time.perf_counter_ns()
        # no lock: updates may interleave with other workers' reads and writes; each
        # worker keeps its own velocity: only the weights are shared
        v = _velocity(scratch, job.token, g.shape) if job.momentum else None
        sgd_step(kernel, flat, g, v, None, 0, flat.size, lr, job.momentum, 2 if job.momentum else 1)
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
