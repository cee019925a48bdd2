"""The scaling model of a sync data-parallel training step (formulas in the README, "partui
scaling"). Pure arithmetic on measured inputs: no numpy, no Dask.

With W workers, a per-worker batch b and a gradient of G bytes, one step costs

    T(W) = D + s * tasks(W) + r * levels(W) + f + c * b + X_rule(W) + A_rule(W)

- c * b + f: the compute of one worker's shard (c per sample, f per step: the SGD update);
- D: Dask's own cost of a step of one worker (sending its tasks, learning they ended,
  fetching the step's statistics), measured with tasks that do nothing;
- s * tasks(W): the scheduler's cost of each task beyond a one-worker step's;
- r * levels(W): each stage of tasks that waits for the one before, beyond a one-worker
  step's (the worker tells the scheduler, the scheduler the next worker);
- X_rule(W): moving the gradients, each message costing a + n * p (a = the transport's
  fixed cost of one exchange here plus the link's latency; p = seconds per byte of the
  transport here plus the link's);
- A_rule(W): summing the gradients (d seconds per byte added), on the critical path.

The combine rules (X, A, extra tasks), for W > 1:
- gather (a parameter server): every gradient to one place and the sum back; that place's
  link carries W gradients each way: X = 2 (a + W G p), A = (W - 1) G d, no extra tasks
  (the place is partui's process), one more stage;
- tree: pairwise adds up a binary tree, the sum back down one: X = 2 ceil(log2 W) (a + G p),
  A = ceil(log2 W) G d, W - 1 add tasks, ceil(log2 W) more stages;
- ring all-reduce: 2 (W - 1) rounds of G / W each (2 (W - 1) / W of the gradient per worker):
  X = 2 (W - 1) (a + G p / W), A = (W - 1) / W G d, one task per worker (the workers pass
  the rounds among themselves), one more stage.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from partui.profiles.scaling.link import Link

RULES = {
    "gather": "gather to one place (parameter server): W gradients in, the sum out to W",
    "tree": "tree reduce: pairwise adds up a binary tree, the sum back down it",
    "ring": "ring all-reduce: 2(W-1) rounds of G/W, 2(W-1)/W of the gradient per worker",
}
# the Dask training's --combine name of each rule it runs
DASK_COMBINE = {"gather": "gather", "tree": "reduce"}
TASKS_PER_WORKER = 4  # a Dask step's tasks per worker: shard, its gradient, its statistics, apply


@dataclass(frozen=True)
class Inputs:
    """The measured inputs (seconds, bytes)."""

    compute_s_per_sample: float  # c: forward, loss and backward, one worker
    compute_s_per_step: float  # f: the SGD update of the weights
    grad_bytes: int  # G
    exchange_s: float  # the fixed cost of one exchange on the Dask transport here
    exchange_s_per_byte: float  # its cost per byte here (1 / bandwidth)
    dask_step_s: float  # D: a one-worker step of tasks that do nothing
    dask_task_s: float  # s: the scheduler's cost of one more task
    dask_level_s: float  # r: one more task that waits for the one before (a round trip)
    add_s_per_byte: float  # d: summing two gradients, per byte of one
    local_s_per_sample: float  # one machine (threads, all its cores): per sample of the batch
    local_s_per_step: float  # ... and per step
    local_workers: int  # the cores that one machine's figure used
    # the cores the training effectively had here (one worker's time per sample over all
    # cores' time per sample): W workers on this machine share them, no more
    parallel_here: float

    def to_dict(self) -> dict:
        return asdict(self)


def levels(workers: int) -> int:
    return math.ceil(math.log2(workers)) if workers > 1 else 0


def exchange_s(rule: str, workers: int, grad_bytes: float, a: float, p: float) -> float:
    """X_rule(W): the gradient exchange's time on the critical path of a step."""
    w, g = workers, grad_bytes
    if w <= 1:
        return 0.0
    if rule == "gather":
        return 2 * (a + w * g * p)
    if rule == "tree":
        return 2 * levels(w) * (a + g * p)
    if rule == "ring":
        return 2 * (w - 1) * (a + g * p / w)
    raise ValueError(f"unknown combine rule {rule!r}")


def add_s(rule: str, workers: int, grad_bytes: float, d: float) -> float:
    """A_rule(W): summing the gradients, on the critical path."""
    w = workers
    if w <= 1:
        return 0.0
    share = {"gather": w - 1, "tree": levels(w), "ring": (w - 1) / w}[rule]
    return share * grad_bytes * d


def extra_tasks(rule: str, workers: int) -> int:
    """tasks(W) less a one-worker step's: the scheduler's extra work per step."""
    w = workers
    combine = {"gather": 0, "tree": w - 1, "ring": w if w > 1 else 0}[rule]
    return TASKS_PER_WORKER * (w - 1) + combine


def extra_levels(rule: str, workers: int) -> int:
    """Stages of tasks waiting for the one before, beyond a one-worker step's."""
    if workers <= 1:
        return 0
    return levels(workers) if rule == "tree" else 1


def link_terms(inputs: Inputs, link: Link | None) -> tuple[float, float]:
    """(a, p): one exchange's fixed cost and cost per byte. The transport measured here is
    the floor (Dask's messages, serialisation, copies); a link adds its latency and wire
    time on top, with no overlap. No link: the transport as measured here."""
    a, p = inputs.exchange_s, inputs.exchange_s_per_byte
    if link is not None:
        a += link.latency_s
        p += link.seconds_per_byte
    return a, p


def step_s(
    inputs: Inputs, rule: str, workers: int, batch: int, link: Link | None, here: bool = False
) -> float:
    """T(W): one step's time on Dask with `workers` workers of `batch` samples each, each on
    its own core. `here`: all the workers on this machine, sharing the cores it effectively
    has (parallel_here): the compute of W shards takes max(1, W / parallel_here) times one's."""
    a, p = link_terms(inputs, link)
    g = inputs.grad_bytes
    shared = max(1.0, workers / inputs.parallel_here) if here else 1.0
    return (
        inputs.dask_step_s
        + inputs.dask_task_s * extra_tasks(rule, workers)
        + inputs.dask_level_s * extra_levels(rule, workers)
        + inputs.compute_s_per_step
        + inputs.compute_s_per_sample * batch * shared
        + exchange_s(rule, workers, g, a, p)
        + add_s(rule, workers, g, inputs.add_s_per_byte)
    )


def local_images_per_s(inputs: Inputs, batch: int) -> float:
    """One machine, all its cores as threads, each with `batch` samples a step."""
    total = batch * inputs.local_workers
    return total / (inputs.local_s_per_step + inputs.local_s_per_sample * total)


@dataclass(frozen=True)
class Prediction:
    workers: int
    rule: str
    batch: int
    step_ms: float
    images_per_s: float
    efficiency: float  # images/s over W times one worker's images/s (same rule, same batch)

    def to_dict(self) -> dict:
        return asdict(self)


def predict(
    inputs: Inputs, rule: str, batch: int, workers: range, link: Link | None
) -> list[Prediction]:
    one = batch / step_s(inputs, rule, 1, batch, link)
    out = []
    for w in workers:
        t = step_s(inputs, rule, w, batch, link)
        ips = w * batch / t
        out.append(Prediction(w, rule, batch, t * 1e3, ips, ips / (w * one)))
    return out


PAYS = 1.10  # doubling the workers must add at least 10% images/s to pay


def stops_paying(rows: list[Prediction]) -> tuple[Prediction, Prediction]:
    """(knee, peak) of predictions for consecutive worker counts: knee, the fewest workers
    from which doubling them (or going to the last count) adds less than 10% images/s, the
    last row if every doubling pays; peak, the row of the most images/s (past it, another
    machine slows the step more than it adds)."""
    by = {r.workers: r for r in rows}
    last = rows[-1]
    peak = max(rows, key=lambda r: (r.images_per_s, -r.workers))
    for r in rows:
        if r is last:
            break
        if by[min(2 * r.workers, last.workers)].images_per_s < PAYS * r.images_per_s:
            return r, peak
    return last, peak


def beats_local(
    inputs: Inputs, rule: str, batches, workers: range, link: Link | None
) -> tuple[int, int, float, float] | None:
    """The smallest per-worker batch (of `batches`, ascending), and at it the fewest workers,
    where Dask's images/s beat one machine's at the same per-worker batch: (batch, workers,
    Dask's images/s, the machine's images/s); None if no batch does."""
    for b in batches:
        here = local_images_per_s(inputs, b)
        for p in predict(inputs, rule, b, workers, link):
            if p.images_per_s > here:
                return b, p.workers, p.images_per_s, here
    return None
