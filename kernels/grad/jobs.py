"""The pass axis: which passes a layer has, and how a strategy cuts them into jobs (run by
`execution`).

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

from dataclasses import dataclass
from typing import Any

from partui.kernels.grad import training
from partui.kernels.grad.combine import COMBINERS
from partui.kernels.model.layers import Layer, prod
from partui.kernels.plan.pass_axes import (
    BACKWARD,
    COMBINE,
    FORWARD,
    UPDATE,
)
from partui.kernels.plan.strategies import split_range

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
    # hogwild: stamp every block write ("versions"), each step's staleness per block into
    # "staleness"[step] and its overlapping writes into "overlaps"[step] (see stamps)
    stamp: bool = False
    # a training step as one phase: after its slice, the task takes its share of the combine
    # and the update once all `wait` slices are in ("arrive"; see sgd.finish_step)
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
