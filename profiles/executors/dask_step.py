"""A data-parallel training step on a Dask cluster, as the Dask executor's train_step runs
it, and the pieces the epoch trainer on Dask shares (tree reduction, the task stream on
partui's clock, waiting on futures).

One step: the step's weights go to every Dask worker (one broadcast), each worker's shard
of the batch is scattered to it, every worker computes its shard's forward, loss and
backward (kernels.dask_tasks.train_shard: the gradient stays on the worker), the gradients
are combined, and the SGD update is made here.

Combination (`--combine`): `reduce` is a tree reduction through Dask (pairwise adds on the
workers, each where its left operand is): with W workers it moves W-1 gradients between
workers and the sum to partui. `gather` (gather and average) fetches all W gradients here
and sums them here.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
import uuid

import numpy as np

from partui.kernels.grad import jobs
from partui.kernels.grad.combine import gather_sum
from partui.kernels.model.layers import get_layer
from partui.kernels.plan.pass_axes import BACKWARD, COMBINE, FORWARD, TRANSFER, UPDATE
from partui.kernels.plan.strategies import split_range
from partui.kernels.runtime.scratch import Cancelled
from partui.profiles.executors.base import WAIT_SLICE_S, WorkerLost, first_line
from partui.profiles.records.events import Span

WAIT_S = 120.0  # a step not done by then fails the run
LOOK_S = 1.0  # how often a waiting step checks that its workers are still there
COMBINE_NAMES = {
    "reduce": "tree reduction through Dask (pairwise adds on the workers)",
    "gather": "gather and average (every gradient fetched here and summed here)",
}


def step(ex, cfg, flat, x, labels, lr, run, repeat):
    """One training step on the cluster; returns (gradient, new weights, per-shard
    (loss, correct), spans, figures)."""
    from partui.kernels.dask_tasks import part, train_shard

    client, lanes = ex.client, ex.lanes
    tag = f"{run}-{repeat}-{uuid.uuid4().hex[:8]}"
    shards = split_range(cfg.batch, cfg.workers)
    spans: list[Span] = []
    w0 = time.perf_counter_ns()
    weights = client.scatter(flat, broadcast=True, hash=False)
    w1 = time.perf_counter_ns()
    keys, grads, stats_f, where = {}, [], [], {}
    sent_bytes = 0
    for i, (n0, n1) in enumerate(shards):
        lane = i % len(lanes)
        address = lanes[lane].address
        s0 = time.perf_counter_ns()
        xs = client.scatter(np.ascontiguousarray(x[n0:n1]), workers=[address], hash=False)
        ls = client.scatter(np.ascontiguousarray(labels[n0:n1]), workers=[address], hash=False)
        s1 = time.perf_counter_ns()
        sent_bytes += x[n0:n1].nbytes + labels[n0:n1].nbytes
        spans.append(Span(lane, lanes[lane].pid, w0, w1, flat.nbytes, i, TRANSFER, repeat, run))
        spans.append(Span(lane, lanes[lane].pid, s0, s1, x[n0:n1].nbytes, i, TRANSFER, repeat, run))
        f = client.submit(
            train_shard, cfg.kernel, xs, ls, weights, 1.0 / cfg.batch,
            key=f"partui-train-{tag}-{i}", workers=[address], pure=False,
        )  # fmt: skip
        keys[f.key] = ("shard", i, lane)
        grads.append(client.submit(part, f, 0, workers=[address], pure=False))
        stats_f.append(client.submit(part, f, slice(1, 5), workers=[address], pure=False))
        where[grads[-1].key] = lane
    addresses = [w.address for w in lanes]
    wall0 = time.time()
    deadline, what = time.monotonic() + WAIT_S, "a Dask training step"
    if cfg.combine == "gather":  # every shard's gradient here, summed here
        wait_futures(ex, [*grads, *stats_f], deadline, what)
        g0 = time.perf_counter_ns()
        parts = gather_within(ex, grads, deadline, what)
        g1 = time.perf_counter_ns()
        for lane in sorted(set(where.values())):
            spans.append(
                Span(lane, lanes[lane].pid, g0, g1, flat.nbytes, lane, TRANSFER, repeat, run)
            )
        c0 = time.perf_counter_ns()
        grad = gather_sum(parts)
        c1 = time.perf_counter_ns()
        spans.append(Span(0, os.getpid(), c0, c1, grad.size * len(parts), 0, COMBINE, repeat, run))
        stats = np.array(gather_within(ex, stats_f, deadline, what), dtype=np.float64)
        fetched = len(parts)
    else:
        total, root, tree_keys = tree_reduce(
            client, grads, [where[g.key] for g in grads], addresses, tag
        )
        keys.update(tree_keys)
        wait_futures(ex, [total, *stats_f], deadline, what)
        g0 = time.perf_counter_ns()
        grad = np.array(gather_within(ex, [total], deadline, what)[0], dtype=np.float32)
        stats = np.array(gather_within(ex, stats_f, deadline, what), dtype=np.float64)
        g1 = time.perf_counter_ns()
        spans.append(Span(root, lanes[root].pid, g0, g1, grad.nbytes, 0, TRANSFER, repeat, run))
        fetched = 1
    u0 = time.perf_counter_ns()
    new = flat - np.float32(lr) * grad
    u1 = time.perf_counter_ns()
    # the update runs here, in partui's process: drawn on lane 0, named by our pid
    spans.append(Span(0, os.getpid(), u0, u1, 2 * flat.size, 0, UPDATE, repeat, run))
    shard_fb = {}
    moved = 0
    for kind, lane, action, a, b in stream_intervals(ex, keys, wall0 - WAIT_S):
        if action == "transfer":
            # a gradient into an add; an input a shard's task fetched is no gradient
            moved += kind[0] == "combine"
            spans.append(
                Span(lane, lanes[lane].pid, a, b, grad.nbytes, kind[1], TRANSFER, repeat, run)
            )
        elif action == "compute" and kind[0] == "combine":
            spans.append(
                Span(lane, lanes[lane].pid, a, b, grad.size, kind[1], COMBINE, repeat, run)
            )
        elif action == "compute":
            shard_fb[kind[1]] = (lane, a, b)
    for i, (lane, a, b) in shard_fb.items():
        n = shards[i][1] - shards[i][0]
        spans += shard_spans(lane, lanes[lane].pid, a, b, n, stats[i], i, repeat, run)
    figures = {
        "weights_ms": (w1 - w0) / 1e6,
        "fetch_ms": (g1 - g0) / 1e6,
        "update_ms": (u1 - u0) / 1e6,
        "gradients_between_workers": moved,
        "gradients_to_partui": fetched,
        "inputs_bytes": sent_bytes,
    }
    return grad, new, stats[:, :2], spans, figures


def summary(steps: list[dict], grad_bytes: int, workers: int, combine: str) -> dict:
    """Medians over the timed steps' figures (step's), and the bytes a step moves."""

    def med(k):
        return float(statistics.median(s[k] for s in steps)) if steps else 0.0

    between = med("gradients_between_workers")
    return {
        "combine": COMBINE_NAMES[combine],
        "gradient_bytes": grad_bytes,
        "gradient_bytes_between_workers_per_step": int(between * grad_bytes),
        "gradient_bytes_to_partui_per_step": int(med("gradients_to_partui") * grad_bytes),
        "weights_bytes_out_per_step": grad_bytes * workers,  # the weights: as large
        "weights_ms": med("weights_ms"),
        "fetch_ms": med("fetch_ms"),
        "update_ms": med("update_ms"),
        "inputs_bytes_per_step": int(med("inputs_bytes")),
    }


def tree_reduce(client, grads: list, lanes: list[int], addresses: list[str], tag: str):
    """The gradient futures `grads` (on the workers of `lanes`) summed by a tree of pairwise
    adds, each run where its left operand is (kernels.gradients.tree_levels): W-1 gradients
    move between workers. Returns (the sum's future, its lane, {task key: ("combine", j,
    lane)})."""
    from partui.kernels.dask_tasks import add_gradients
    from partui.kernels.grad.combine import tree_levels

    level, where, keys = list(grads), list(lanes), {}
    for depth, pairs in enumerate(tree_levels(len(grads))):
        nxt, on = [], []
        for j, (a, b) in enumerate(pairs):
            lane = where[a]
            f = client.submit(
                add_gradients, level[a], level[b], workers=[addresses[lane]], pure=False,
                key=f"partui-combine-{tag}-{depth}-{j}",
            )  # fmt: skip
            keys[f.key] = ("combine", j, lane)
            nxt.append(f)
            on.append(lane)
        if len(level) % 2:
            nxt.append(level[-1])
            on.append(where[-1])
        level, where = nxt, on
    return level[0], where[0], keys


def stream_intervals(ex, keys: dict, since: float):
    """(keys[key], lane, action, start_ns, end_ns) of every compute and transfer in Dask's task
    stream since `since` (wall clock) for the tasks of `keys`, on this process's
    perf_counter clock: the stream's times are the worker's clock plus Dask's estimate of its
    lag behind the scheduler (read fresh here), less the worker's offset to ours."""
    stream = ex.client.get_task_stream(start=since)
    ex.read_lags()
    lanes = ex.lanes
    wall0, perf0 = time.time(), time.perf_counter_ns()
    lane_of = {w.address: i for i, w in enumerate(lanes)}
    for rec in stream:
        kind = keys.get(rec.get("key"))
        if kind is None:
            continue
        lane = lane_of.get(rec.get("worker"), kind[2])
        offset = lanes[lane].offset_s + lanes[lane].lag_now_s
        for ss in rec.get("startstops", ()):
            a = perf0 + round((ss["start"] - offset - wall0) * 1e9)
            b = max(a, perf0 + round((ss["stop"] - offset - wall0) * 1e9))
            if ss.get("action") in ("compute", "transfer"):
                yield kind, lane, ss["action"], a, b


def wait_futures(ex, futures: list, deadline: float, what: str, stop=None, lanes=None) -> None:
    """Wait for `futures`, waking every WAIT_SLICE_S to notice a cancel (`stop()` true or the
    executor's cancel event: Cancelled) and the deadline (WorkerLost); a future that failed
    (its worker lost, or the task raised), or a worker of `lanes` (indices; default all)
    gone, is WorkerLost too, in one line."""
    left, lock, done = [len(futures)], threading.Lock(), threading.Event()

    def one_done(_future) -> None:
        with lock:
            left[0] -= 1
            if left[0] <= 0:
                done.set()

    for f in futures:
        f.add_done_callback(one_done)
    look = time.monotonic() + LOOK_S
    while not (done.is_set() or (not futures)):
        if ex.cancel_event.is_set() or (stop is not None and stop()):
            ex.client.cancel(futures)
            raise Cancelled()
        if time.monotonic() > deadline:
            ex.client.cancel(futures)
            raise WorkerLost(f"{what} did not finish within {WAIT_S:.0f} s")
        if time.monotonic() > look:
            # a task pinned to a worker that is gone waits for it for ever (a restarted
            # worker has a new address): look for the lanes' workers now and then
            look = time.monotonic() + LOOK_S
            alive = set(ex.client.scheduler_info(n_workers=-1)["workers"])
            used = ex.lanes if lanes is None else [ex.lanes[i] for i in lanes]
            lost = [w.name for w in used if w.address not in alive]
            if lost:
                ex.stale = True
                ex.client.cancel(futures)
                raise WorkerLost(f"{what} failed: Dask worker {lost[0]} was lost")
        done.wait(WAIT_SLICE_S)
    failed = next((f for f in futures if f.status != "finished"), None)
    if failed is not None:
        ex.stale = True
        exc = failed.exception() if failed.status == "error" else None
        why = first_line(exc) if exc is not None else failed.status
        raise WorkerLost(f"{what} failed ({type(exc).__name__ if exc else 'task'}: {why})")


def gather_within(ex, futures: list, deadline: float, what: str, lanes=None) -> list:
    """The results of `futures` (waited for with wait_futures): a result held by a worker
    lost after its task finished is computed again, and one pinned to the lost worker's
    address waits for ever; so each is waited for until the deadline, the lanes looked at
    meanwhile, and a loss is WorkerLost."""
    import concurrent.futures

    out = []
    for f in futures:
        while True:
            try:
                out.append(f.result(timeout=LOOK_S))
                break
            except (TimeoutError, concurrent.futures.TimeoutError):
                if time.monotonic() > deadline:
                    raise WorkerLost(f"{what} did not finish within {WAIT_S:.0f} s") from None
                # a worker gone: wait_futures says so (its lanes check), and cancels
                wait_futures(ex, [f], deadline, what, lanes=lanes)
    return out


def shard_spans(lane, pid, a, b, samples, stats, i, repeat, run) -> list[Span]:
    """A shard's compute [a, b) as its forward and backward spans, cut where the worker's own
    durations (stats[2], stats[3], ns) put the end of the forward."""
    network = get_layer("network")
    units = (network.flops(1) + jobs.backward_flops(network, 1)) * samples
    fwd_ns, bwd_ns = float(stats[2]), float(stats[3])
    cut = a + round((b - a) * fwd_ns / max(1.0, fwd_ns + bwd_ns))
    return [
        Span(lane, pid, a, cut, units // 3, i, FORWARD, repeat, run),
        Span(lane, pid, cut, b, units - units // 3, i, BACKWARD, repeat, run),
    ]
