"""The scaling model's inputs, measured on this machine, and its check against real Dask
training runs (`partui scaling`).

Every figure keeps its samples' median and min-max; fits keep their standard errors. The
Dask figures come from one cluster of two single-threaded workers (a LocalCluster partui
starts, or a scheduler's first two workers), started once. The calibration and the Dask
training runs it is checked against are measured in alternating rounds, so both see the
same share of a machine that others may be using too.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from partui.profiles.records.stats import summarize
from partui.profiles.scaling.fit import fit_line
from partui.profiles.scaling.model import DASK_COMBINE, Inputs, step_s
from partui.profiles.system import blas

KERNEL = "vectorized"  # the fastest kernel (loops is the per-pixel baseline, ~1000x slower)
# around the gradient (1.1 MiB), up to twice it
EXCHANGE_SIZES = (16 * 1024, 256 * 1024, 1024 * 1024, 1536 * 1024, 2560 * 1024)
VALIDATION_STEPS = 5  # timed steps of each Dask training run per round
ROUNDS = 2
VALIDATION = ((1, "tree"), (2, "tree"), (2, "gather"))  # (workers, rule) of the Dask runs


def spread(values) -> dict:
    s = summarize(values)
    return {"median": s.median, "min": s.min, "max": s.max, "n": s.n}


def _times(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t0) / 1e9)
    return out


@dataclass
class Samples:
    """What the rounds measured, pooled: fits' points and plain samples (seconds)."""

    compute: list[tuple[int, float]] = field(default_factory=list)  # (batch, s), one worker
    compute_both: list[float] = field(default_factory=list)  # s per sample, two at once
    exchange: list[tuple[int, float]] = field(default_factory=list)  # (bytes, s)
    dask_step: list[float] = field(default_factory=list)
    dask_tasks: list[tuple[int, float]] = field(default_factory=list)  # (tasks, s)
    dask_chain: list[tuple[int, float]] = field(default_factory=list)  # (chained tasks, s)
    steps: dict[tuple[int, str], list[float]] = field(default_factory=dict)  # validation
    exchange_ms: dict[tuple[int, str], list[float]] = field(default_factory=dict)


# ---- here, in this process --------------------------------------------------------------------
def measure_update(repeats: int) -> dict:
    """The SGD update (with momentum) of the whole network and one sum of two gradients, the
    per-step compute that does not grow with the batch."""
    from partui.kernels.grad import training
    from partui.kernels.grad.sgd import sgd_step

    params = training.flat_params(0)
    grad, velocity = np.zeros_like(params), np.zeros_like(params)
    with blas.limit(1):
        sgd = _times(
            lambda: sgd_step(KERNEL, params, grad, velocity, None, 0, params.size, 1e-9, 0.9, 2),
            repeats + 1,
        )[1:]
    other = grad + 1.0
    adds = _times(lambda: grad + other, repeats + 1)[1:]
    return {"sgd_update_s": spread(sgd), "add_s": spread(adds), "grad_bytes": int(params.nbytes)}


def measure_local(batches, steps: int, workers: int) -> dict:
    """One machine: sync training on threads (one per core) at per-worker batches `batches`;
    each step's time from the trainer's own step ends, fitted as l0 + l * (workers * b)."""
    from partui.profiles.records.train_config import TrainConfig
    from partui.profiles.train.datasets import builtin_letters
    from partui.profiles.train.trainer import Trainer

    xs, ys, per_batch = [], [], {}
    for b in batches:
        total = b * workers
        cfg = TrainConfig(
            epochs=1,
            batch=total,
            workers=workers,
            executor="threads",
            train_size=total * (steps + 2),
            test_size=16,
        )
        data = builtin_letters(cfg.train_size, cfg.test_size, cfg.seed)
        times = step_times(Trainer(cfg, data).run())
        per_batch[str(b)] = spread(times)
        xs += [total] * len(times)
        ys += times
    least = [(total, per_batch[str(total // workers)]["min"]) for total in sorted(set(xs))]
    return {
        "workers": workers,
        "fit": fit_line(xs, ys).to_dict(),
        "fit_min": fit_line([x for x, _ in least], [y for _, y in least]).to_dict(),
        "per_batch_s": per_batch,
    }


def step_times(result) -> list[float]:
    """Each step's seconds from a training result's loss curve, the first step left out (it
    holds the first touch of the data and, on Dask, the first connections)."""
    ends = [row[1] for row in result.loss_curve]
    return [b - a for a, b in zip(ends, ends[1:])][1:] or [float("nan")]


# ---- on the Dask workers ----------------------------------------------------------------------
@dataclass
class DaskProbe:
    """The two Dask workers measured, by address, and the client."""

    client: Any  # distributed.Client
    a: str
    b: str

    def submit(self, fn, *args, on: str):
        return self.client.submit(fn, *args, workers=[on], allow_other_workers=False, pure=False)


def measure_compute(probe: DaskProbe, batches, repeats: int, into: Samples) -> None:
    """One worker's forward, loss and backward of a shard (dask_tasks.train_shard), timed by
    the worker itself, at several batches; then the same on both workers at once (how much
    two workers on this machine slow each other)."""
    from partui.kernels.dask_tasks import part, train_shard
    from partui.kernels.grad import training

    rng = np.random.default_rng(0)
    params = training.flat_params(0)

    def shard(b: int, on: str):
        x = rng.standard_normal((b, 1, 28, 28)).astype(np.float32)
        y = rng.integers(0, 26, b).astype(np.int64)
        f = probe.submit(train_shard, KERNEL, x, y, params, 1.0 / b, on=on)
        return probe.submit(part, f, slice(3, 5), on=on)  # (forward ns, backward ns)

    probe.client.gather([shard(2, probe.a), shard(2, probe.b)])  # the kernels loaded on both
    for b in batches:
        for i in range(repeats + 1):
            ns = sum(shard(b, probe.a).result())
            if i:  # the first sizes the worker's scratch
                into.compute.append((b, ns / 1e9))
    b = max(batches)
    for _ in range(repeats):
        both = probe.client.gather([shard(b, probe.a), shard(b, probe.b)])
        into.compute_both += [sum(ns) / 1e9 / b for ns in both]


def measure_exchange(probe: DaskProbe, sizes, repeats: int, into: Samples) -> None:
    """One exchange: worker b fetching an array that worker a holds, timed by worker b itself
    (the 'transfer' Dask's task stream records for the task that needed it: the comm from
    request to arrival, no scheduling)."""
    from partui.kernels.dask_probe import make_bytes, touch

    since = time.time() - 1.0
    keys: dict[str, int] = {}
    for n in sizes:
        for i in range(repeats + 1):
            held = probe.submit(make_bytes, n, time.perf_counter_ns(), on=probe.a)
            held.result()
            f = probe.submit(touch, held, on=probe.b)
            f.result()
            if i:  # the first of each size may open a connection
                keys[f.key] = n
            del held, f
    for rec in probe.client.get_task_stream(start=since):
        n = keys.get(rec.get("key"))
        if n is None:
            continue
        for ss in rec.get("startstops", ()):
            if ss.get("action") == "transfer":
                into.exchange.append((n, float(ss["stop"]) - float(ss["start"])))


def measure_dask_step(probe: DaskProbe, repeats: int, into: Samples) -> None:
    """A one-worker step's tasks, doing nothing: shard, its gradient and statistics, the
    update after the gradient; waited for, the statistics fetched (as the training does)."""
    from partui.kernels.dask_probe import nothing

    def one():
        shard = probe.submit(nothing, on=probe.a)
        grad = probe.submit(nothing, shard, on=probe.a)
        stats = probe.submit(nothing, shard, on=probe.a)
        probe.client.gather([probe.submit(nothing, grad, on=probe.a)])
        probe.client.gather([stats])

    into.dask_step += _times(one, repeats + 1)[1:]


def measure_dask_tasks(probe: DaskProbe, counts, repeats: int, into: Samples) -> None:
    """The scheduler's cost of one more task: `k` independent tasks that do nothing, sent at
    once across both workers, timed until all are done."""
    from partui.kernels.dask_probe import nothing

    for k in counts:

        def one(k=k):
            sent = [probe.submit(nothing, i, on=(probe.a, probe.b)[i % 2]) for i in range(k)]
            probe.client.gather(sent)

        into.dask_tasks += [(k, t) for t in _times(one, repeats + 1)[1:]]


def measure_dask_chain(probe: DaskProbe, lengths, repeats: int, into: Samples) -> None:
    """One stage more: `k` tasks that do nothing, each waiting for the one before (on one
    worker, so nothing moves), timed until the last is done."""
    from partui.kernels.dask_probe import nothing

    for k in lengths:

        def one(k=k):
            f = probe.submit(nothing, on=probe.a)
            for _ in range(k - 1):
                f = probe.submit(nothing, f, on=probe.a)
            f.result()

        into.dask_chain += [(k, t) for t in _times(one, repeats + 1)[1:]]


def run_validation(ex, batch: int, steps: int, runs, into: Samples, say) -> None:
    """Real sync Dask training (`runs`: (workers, rule)) on the started executor `ex`,
    `batch` samples per worker a step, `steps` timed steps each."""
    from partui.profiles.records.train_config import TrainConfig
    from partui.profiles.train.datasets import builtin_letters
    from partui.profiles.train.trainer import Trainer

    for workers, rule in runs:
        total = batch * workers
        say(f"Dask training, {workers} worker(s), {rule}, batch {batch} per worker")
        cfg = TrainConfig(
            epochs=1,
            batch=total,
            workers=workers,
            executor="dask",
            combine=DASK_COMBINE[rule],
            scheduler=ex.scheduler,
            train_size=total * (steps + 2),
            test_size=16,
        )
        data = builtin_letters(cfg.train_size, cfg.test_size, cfg.seed)
        result = Trainer(cfg, data, executor=ex).run()
        dask = result.dask or {}
        if dask.get("error") or result.interrupted:
            raise RuntimeError(f"a Dask training run failed: {dask.get('error') or 'stopped'}")
        into.steps.setdefault((workers, rule), []).extend(step_times(result))
        ms = dask.get("training", {}).get("exchange_ms")
        if ms is not None:
            into.exchange_ms.setdefault((workers, rule), []).append(float(ms))


# ---- the whole calibration --------------------------------------------------------------------
def _fits(points) -> dict:
    """`fit`: least squares over every (x, y); `fit_min`: over each x's least y (the
    least-disturbed sample of each, what a machine of its own would see); `per_x`: spreads."""
    xs = sorted({x for x, _ in points})
    groups = {x: [y for xx, y in points if xx == x] for x in xs}
    return {
        "fit": fit_line([p[0] for p in points], [p[1] for p in points]).to_dict(),
        "fit_min": fit_line(xs, [min(groups[x]) for x in xs]).to_dict(),
        "per_x": {str(x): spread(groups[x]) for x in xs},
    }


def summary(samples: Samples, update: dict, local: dict) -> dict:
    """The calibration's figures (JSON) from the pooled samples."""
    if len({n for n, _ in samples.exchange}) < 2:
        raise RuntimeError("Dask's task stream recorded no transfers between the two workers")
    compute, exchange, tasks, chain = (
        _fits(samples.compute),
        _fits(samples.exchange),
        _fits(samples.dask_tasks),
        _fits(samples.dask_chain),
    )
    return {
        "compute": {
            "kernel": KERNEL,
            "fit": compute["fit"],
            "fit_min": compute["fit_min"],
            "per_batch_s": compute["per_x"],
            "per_sample_two_at_once_s": spread(samples.compute_both),
            **update,
        },
        "local": local,
        "exchange": {
            "fit": exchange["fit"],
            "fit_min": exchange["fit_min"],
            "per_size_s": exchange["per_x"],
        },
        "dask_step_s": spread(samples.dask_step),
        "dask_tasks": {
            "fit": tasks["fit"],
            "fit_min": tasks["fit_min"],
            "per_count_s": tasks["per_x"],
        },
        "dask_chain": {
            "fit": chain["fit"],
            "fit_min": chain["fit_min"],
            "per_length_s": chain["per_x"],
        },
    }


STATS = ("median", "min")  # the inputs from each figure's median, or from its least sample


def inputs_from(calibration: dict, stat: str = "median") -> Inputs:
    """The model's inputs from every figure's median (fits over all samples), or its least
    sample (`min`: fits over each size's least)."""
    c, loc, ex = calibration["compute"], calibration["local"], calibration["exchange"]
    fit = "fit" if stat == "median" else "fit_min"
    g = c["grad_bytes"]
    per_sample = c[fit]["slope"]
    both = c["per_sample_two_at_once_s"][stat]
    return Inputs(
        compute_s_per_sample=per_sample,
        compute_s_per_step=max(0.0, c[fit]["intercept"]) + c["sgd_update_s"][stat],
        grad_bytes=g,
        exchange_s=max(0.0, ex[fit]["intercept"]),
        exchange_s_per_byte=max(0.0, ex[fit]["slope"]),
        dask_step_s=calibration["dask_step_s"][stat],
        dask_task_s=max(0.0, calibration["dask_tasks"][fit]["slope"]),
        dask_level_s=max(0.0, calibration["dask_chain"][fit]["slope"]),
        add_s_per_byte=c["add_s"][stat] / g,
        local_s_per_sample=loc[fit]["slope"],
        local_s_per_step=max(0.0, loc[fit]["intercept"]),
        local_workers=loc["workers"],
        # two workers at once, each slowed from `per_sample` to `both`: 2 per_sample / both
        # cores between them (at least one, at most two)
        parallel_here=min(2.0, max(1.0, 2 * per_sample / both)) if both > 0 else 1.0,
    )


def validation_rows(samples: Samples, inputs: dict[str, Inputs], batch: int) -> list[dict]:
    """Each Dask training run's step times against the model's step with the transport as
    measured here (no link added) and the workers sharing this machine: the median step
    against the model from the figures' medians, the least step against the model from their
    least samples."""
    out = []
    for (workers, rule), times in samples.steps.items():
        measured = spread(times)
        row: dict = {
            "workers": workers,
            "rule": rule,
            "batch_per_worker": batch,
            "measured_step_ms": {k: v * 1e3 if k != "n" else v for k, v in measured.items()},
            "measured_exchange_ms": spread(samples.exchange_ms.get((workers, rule), [])),
        }
        for stat in STATS:
            predicted = step_s(inputs[stat], rule, workers, batch, None, here=True)
            m = measured[stat]
            suffix = "" if stat == "median" else "_min"
            row[f"predicted_step{suffix}_ms"] = predicted * 1e3
            row[f"relative_error{suffix}"] = (predicted - m) / m if m > 0 else math.nan
        out.append(row)
    return out


def calibrate(
    batch: int,
    scheduler: str = "",
    say: Callable[[str], None] = lambda s: None,
    repeats: int = 3,
    rounds: int = ROUNDS,
    steps: int = VALIDATION_STEPS,
    runs=VALIDATION,
) -> dict:
    """Every input of the model, measured, and the check against Dask training at `batch`
    samples per worker (`steps` timed steps of each run per round). Returns {"calibration",
    "validation", "inputs"}."""
    from partui.profiles.executors.dask_cluster import DaskExecutor

    t_start = time.perf_counter()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    say("the SGD update and a gradient sum, here")
    update = measure_update(repeats * 3)
    say(f"one machine: training on {cores} threads")
    batches = sorted({max(1, batch // 4), max(2, batch)})  # two, for a line
    local = measure_local(batches, 5, cores)
    say("Dask: starting two workers")
    ex = DaskExecutor(2, scheduler)
    samples = Samples()
    try:
        startup_ms = ex.start()
        if len(ex.lanes) < 2:
            raise RuntimeError("the Dask cluster has fewer than two workers: nothing to exchange")
        probe = DaskProbe(ex.client, ex.lanes[0].address, ex.lanes[1].address)
        for r in range(1, rounds + 1):
            say(f"round {r}/{rounds}: compute on a Dask worker at batches {batches}")
            measure_compute(probe, batches, repeats, samples)
            say(f"round {r}/{rounds}: exchanges of several sizes between the two workers")
            measure_exchange(probe, EXCHANGE_SIZES, repeats, samples)
            say(f"round {r}/{rounds}: a step's own cost and a task's")
            measure_dask_step(probe, repeats * 2, samples)
            measure_dask_tasks(probe, (2, 16), repeats, samples)
            measure_dask_chain(probe, (1, 4), repeats, samples)
            run_validation(ex, batch, steps, runs, samples, lambda s: say(f"round {r}: {s}"))
        cluster = {"scheduler": ex.address, "local": ex.owns_cluster, "workers_used": 2}
    finally:
        ex.close()
    calibration = summary(samples, update, local)
    inputs = {stat: inputs_from(calibration, stat) for stat in STATS}
    calibration.update(
        cluster={**cluster, "cores_here": cores, "startup_ms": startup_ms},
        rounds=rounds,
        repeats=repeats,
        seconds=time.perf_counter() - t_start,
        load_average=list(os.getloadavg()),
    )
    return {
        "calibration": calibration,
        "validation": validation_rows(samples, inputs, batch),
        "inputs": inputs,
    }
