"""`partui train --executor dask`: sync data-parallel SGD with the weights kept on the workers.

Set-up (timed apart, like a pool's start-up): the training set goes once to every Dask
worker used (a copy to each, sent from here), and so do the starting weights; each worker
keeps its own copy of the weights and of the momentum buffer (kernels.dask_tasks.train_setup).

A step: partui sends each worker the indices of its shard of the batch (a few hundred
bytes), the worker computes its shard's gradient with the weights it holds, the gradients
are combined, and the sum goes to every worker, which applies the same SGD update to its
own copy. Only gradients move, never weights. Two combines (`--combine`):

- `reduce`: a tree of pairwise adds through Dask, each where its left operand is; the sum
  lands on the first worker and Dask sends it to the others: 2(W-1) gradients move between
  workers per step, none to partui.
- `gather`: every worker's gradient fetched here and summed here, the sum sent back to
  every worker: W gradients in, W out, per step.

The workers' copies stay bit-identical (same gradient, same arithmetic): after each epoch
partui compares their digests, fetches the weights from the first worker and scores the
test split here. The batch order is the local trainer's (same seed), so a run on one Dask
worker follows the inline run step by step.
"""

from __future__ import annotations

import statistics
import time
import uuid
from dataclasses import replace

import numpy as np

from partui.kernels.grad.combine import gather_sum
from partui.kernels.plan.pass_axes import COMBINE, TRANSFER, UPDATE
from partui.kernels.plan.strategies import split_range
from partui.kernels.runtime.scratch import Cancelled
from partui.profiles.executors.base import WorkerLost, first_line
from partui.profiles.executors.dask_step import (
    COMBINE_NAMES,
    WAIT_S,
    gather_within,
    shard_spans,
    stream_intervals,
    tree_reduce,
    wait_futures,
)
from partui.profiles.executors.registry import make_executor
from partui.profiles.records.events import Span, StepDone
from partui.profiles.system import blas, interrupts

STOP_WAIT_S = 5.0  # how long a stopped run waits for the weights it learned


def train_epochs(trainer, executor=None):
    """Trainer.epochs() on Dask: yields each epoch's report. `executor`: a started
    DaskExecutor to use (and leave open); default: one of the trainer's own, closed at the
    end (which stops a LocalCluster partui started, never another)."""
    cfg = trainer.cfg
    ex = executor
    if ex is None:
        ex = make_executor(cfg.executor, cfg.workers, cfg.scheduler)
    run = None
    try:
        trainer.result.pool_startup_ms = ex.start()
        if ex.stale:
            ex.refresh_workers()
        run = _DaskTraining(trainer, ex)
        with blas.limit(1):  # the scoring here, beside the client's and scheduler's threads
            yield from run.epochs()
    finally:
        if run is not None:
            run.drop()
        if executor is None:
            ex.close()


class _DaskTraining:
    def __init__(self, trainer, ex):
        self.trainer, self.ex = trainer, ex
        self.cfg = cfg = trainer.cfg
        self.client = ex.client
        # one shard per Dask worker, up to --workers of them
        self.lanes = list(range(min(cfg.workers, len(ex.lanes))))
        self.addresses = [ex.lanes[i].address for i in self.lanes]
        self.token = f"partui-train-{trainer.token}"
        self.grad_bytes = trainer.params.nbytes
        self.steps: list[dict] = []  # per step: figures (ms, transfers)
        self.epoch_steps: list[dict] = []  # the current epoch's
        self.notes: list[str] = []
        self.error = ""  # why the run stopped early (a lost worker), one line
        self.pending: list = []  # the current step's futures
        self.setup = self._setup()

    # -- set-up and clean-up -----------------------------------------------------------
    def _setup(self) -> dict:
        from partui.kernels.dask_tasks import train_setup

        client, data = self.client, self.trainer.data
        t0 = time.perf_counter_ns()
        arrays = (data.train_x, data.train_y.astype(np.int64), self.trainer.params)
        try:
            # one copy to each worker from here: a broadcast replicates between workers and
            # waits for ever on one that is gone, where a scatter to it times out
            held = [
                [client.scatter(a, workers=[address], hash=False) for a in arrays]
                for address in self.addresses
            ]
            ready = [
                client.submit(
                    train_setup,
                    self.token,
                    self.cfg.kernel,
                    *held[i],
                    workers=[a],
                    allow_other_workers=False,
                    pure=False,
                    key=f"{self.token}-setup-{i}",
                )  # fmt: skip
                for i, a in enumerate(self.addresses)
            ]
        except Exception as exc:  # noqa: BLE001 - a worker gone while the data went out
            raise WorkerLost(f"sending the data set to Dask failed: {self._lost(exc)}") from None
        wait_futures(self.ex, ready, time.monotonic() + WAIT_S, "sending the data set to Dask")
        ms = (time.perf_counter_ns() - t0) / 1e6
        del held  # the workers hold their own references
        w = len(self.lanes)
        return {
            "ms": ms,
            "data_bytes": (data.train_x.nbytes + 8 * len(data.train_y)) * w,
            "weights_bytes": self.grad_bytes * w,
        }

    def _lost(self, exc: BaseException) -> str:
        """Which of the run's workers is gone (one line), else what `exc` says."""
        try:
            alive = set(self.client.scheduler_info(n_workers=-1)["workers"])
        except Exception:  # noqa: BLE001 - the scheduler itself is unreachable
            alive = set(self.addresses)
        gone = [self.ex.lanes[i].name for i, a in zip(self.lanes, self.addresses) if a not in alive]
        if gone:
            return f"Dask worker {gone[0]} was lost ({type(exc).__name__})"
        return first_line(exc)

    def drop(self) -> None:
        """Forget the run on the workers (an external cluster keeps running)."""
        from partui.kernels.dask_tasks import train_drop

        try:
            # only those still there: a lost one's address would hold the call for seconds
            alive = set(self.client.scheduler_info(n_workers=-1)["workers"])
            here = [a for a in self.addresses if a in alive]
            if here:
                self.client.run(train_drop, self.token, workers=here)
        except Exception:  # noqa: BLE001 - a lost worker forgot it anyway
            pass

    # -- the run ----------------------------------------------------------------------
    def epochs(self):
        tr, cfg, data, res = self.trainer, self.cfg, self.trainer.data, self.trainer.result
        n, b = len(data.train_y), cfg.batch
        steps = n // b
        rng = np.random.default_rng([cfg.seed, 7])  # the local trainer's batch order
        a = {"losses": np.empty(steps, np.float32), "hits": np.zeros(steps, np.float32)}
        sample_every = max(1, cfg.epochs * steps // 40)
        t_start = time.perf_counter()
        for epoch in range(1, cfg.epochs + 1):
            order = rng.permutation(n)
            a["losses"].fill(np.nan)
            a["hits"].fill(0)
            tr.step_ends = {}
            t0 = time.perf_counter()
            wall0 = time.time()
            keys: dict = {}
            self.epoch_steps = []
            step_stats: dict[int, np.ndarray] = {}
            try:
                for step in range(steps):
                    if tr.stop is not None and tr.stop.is_set():
                        raise Cancelled()
                    interrupts.raise_if_swallowed()
                    self._step(epoch, step, steps, order, a, keys, step_stats, t_start)
                t_read = time.perf_counter()
                spans = self._spans(keys, step_stats, wall0)
                # its tasks are pinned to the workers too: a worker lost now stops the run
                self._fetch_weights(check=True)
            except (KeyboardInterrupt, Cancelled, WorkerLost) as exc:
                interrupts.handled()
                if isinstance(exc, WorkerLost):
                    done = len(self.epoch_steps)
                    where = f"step {done + 1}" if done < steps else "as it ended"
                    self.error = f"epoch {epoch}, {where}: {exc}"
                self.client.cancel(self.pending)  # the stopped step's tasks
                done_spans: list = []
                try:
                    done_spans = self._spans(keys, step_stats, wall0)  # the finished steps
                except Exception:  # noqa: BLE001 - a lost worker: the figures go without
                    pass
                self._fetch_weights(check=False)
                self._report()
                tr.epoch_done(epoch, steps, a, t0, t_start, done_spans, None)
                res.interrupted = True
                return
            # reading the task stream and fetching the weights are not training
            t0 += time.perf_counter() - t_read
            base = (epoch - 1) * steps
            res.spans.extend(
                replace(s, repeat=base + s.repeat)
                for s in spans
                if (base + s.repeat) % sample_every == 0
            )
            self._report()
            tr.epoch_done(epoch, steps, a, t0, t_start, spans, tr.score_here)
            if res.epochs:
                yield res.epochs[-1]
            if tr.stop is not None and tr.stop.is_set():
                res.interrupted = True
                return

    def _step(self, epoch, step, steps, order, a, keys, step_stats, t_start) -> None:
        from partui.kernels.dask_tasks import part, train_apply, train_rows

        cfg, client, addresses = self.cfg, self.client, self.addresses
        tag = f"{self.token}-{epoch}-{step}-{uuid.uuid4().hex[:6]}"
        b = cfg.batch
        t0 = time.perf_counter_ns()
        grads, stats = [], []
        known: dict[int, int] = {}
        for i, (n0, n1) in enumerate(split_range(b, len(addresses))):
            rows = order[step * b + n0 : step * b + n1].astype(np.int64)
            f = client.submit(
                train_rows, self.token, cfg.kernel, rows, 1.0 / b, workers=[addresses[i]],
                allow_other_workers=False, pure=False, key=f"{tag}-shard-{i}",
            )  # fmt: skip
            keys[f.key] = ("shard", i, i, step)
            g = client.submit(part, f, 0, workers=[addresses[i]], pure=False, key=f"{tag}-g-{i}")
            g.add_done_callback(lambda f, i=i: known.setdefault(i, time.perf_counter_ns()))
            grads.append(g)
            stats.append(client.submit(part, f, slice(1, 5), workers=[addresses[i]], pure=False))
        deadline, what = time.monotonic() + WAIT_S, "a Dask training step"
        stop = self._stopped
        fig: dict = {"step": step, "to_partui": 0, "from_partui": 0}
        if cfg.combine == "gather":
            wait_futures(self.ex, grads, deadline, what, stop, self.lanes)
            g0 = time.perf_counter_ns()
            parts = gather_within(self.ex, grads, deadline, what, self.lanes)
            g1 = time.perf_counter_ns()
            total = gather_sum(parts)
            g2 = time.perf_counter_ns()
            # one copy per worker, each sent from here: Dask's broadcast=True sends one copy
            # and replicates it between the workers, which is not what `gather` promises
            means = [client.scatter(total, workers=[a], hash=False) for a in addresses]
            g3 = time.perf_counter_ns()
            fig.update(
                gather_ms=(g1 - g0) / 1e6,
                sum_ms=(g2 - g1) / 1e6,
                scatter_ms=(g3 - g2) / 1e6,
                to_partui=len(parts),
                from_partui=len(parts),
                here=(g0, g1, g2, g3),
            )
        else:
            mean, _, tree_keys = tree_reduce(client, grads, self.lanes, addresses, tag)
            keys.update({k: (*v, step) for k, v in tree_keys.items()})
            means = [mean] * len(addresses)
        applies: list = []
        self.pending = [*grads, *stats, *applies]
        for i, address in enumerate(addresses):
            f = client.submit(
                train_apply, self.token, cfg.kernel, means[i], cfg.lr, cfg.momentum,
                workers=[address], allow_other_workers=False, pure=False, key=f"{tag}-apply-{i}",
            )  # fmt: skip
            keys[f.key] = ("update", i, i, step)
            applies.append(f)
            self.pending.append(f)
        wait_futures(self.ex, [*applies, *stats], deadline, what, stop, self.lanes)
        t1 = time.perf_counter_ns()
        # (loss, correct, fwd, bwd): held by the workers, which may be lost by now
        got = np.array(
            gather_within(self.ex, stats, deadline, what, self.lanes),
            dtype=np.float64,
        )
        step_stats[step] = got
        loss = float(got[:, 0].sum()) / b
        a["losses"][step] = loss
        a["hits"][step] = float(got[:, 1].sum())
        # the exchange: from the last shard gradient known here to every worker updated
        fig.update(
            step_ms=(t1 - t0) / 1e6, exchange_ms=(t1 - max(known.values(), default=t1)) / 1e6
        )
        self.steps.append(fig)
        self.epoch_steps.append(fig)
        elapsed = time.perf_counter() - t_start
        tr = self.trainer
        tr.step_ends[step] = elapsed
        base = (epoch - 1) * steps
        tr.emit(StepDone(base + step + 1, epoch, steps, elapsed, loss, (base + step + 1) * b))

    def _stopped(self) -> bool:
        return self.trainer.stop is not None and self.trainer.stop.is_set()

    # -- after an epoch -----------------------------------------------------------------
    def _spans(self, keys: dict, step_stats: dict, wall0: float) -> list[Span]:
        """The epoch's spans (repeat = step in the epoch) from Dask's task stream, and the
        gradients that moved between workers per step (transfers into combine and update
        tasks)."""
        ex, lanes = self.ex, self.ex.lanes
        spans: list[Span] = []
        moved: dict[int, int] = {}
        shards = split_range(self.cfg.batch, len(self.lanes))
        for kind, lane, action, a, b in stream_intervals(ex, keys, wall0 - 1.0):
            what, i, _, step = kind
            pid = lanes[lane].pid
            if action == "transfer":
                if what in ("combine", "update"):  # a gradient or the sum, between workers
                    moved[step] = moved.get(step, 0) + 1
                spans.append(Span(lane, pid, a, b, self.grad_bytes, i, TRANSFER, step))
            elif what == "shard" and step in step_stats:
                n = shards[i][1] - shards[i][0]
                spans += shard_spans(lane, pid, a, b, n, step_stats[step][i], i, step, 0)
            elif what == "combine":
                spans.append(Span(lane, pid, a, b, self.grad_bytes // 4, i, COMBINE, step))
            elif what == "update":
                spans.append(Span(lane, pid, a, b, self.grad_bytes // 2, i, UPDATE, step))
        for fig in self.epoch_steps:
            fig["between"] = moved.get(fig["step"], 0)
            here = fig.pop("here", None)
            if here is not None:  # gather: the moves to and from partui, timed here
                g0, g1, g2, g3 = here
                for lane in self.lanes:
                    pid = lanes[lane].pid
                    spans.append(
                        Span(lane, pid, g0, g1, self.grad_bytes, lane, TRANSFER, fig["step"])
                    )
                    spans.append(
                        Span(lane, pid, g2, g3, self.grad_bytes, lane, TRANSFER, fig["step"])
                    )
        return spans

    def _fetch_weights(self, check: bool) -> None:
        """The weights from the first worker into the trainer's (`check`: every worker's
        weights and momentum first compared by digest)."""
        from partui.kernels.dask_tasks import train_digest, train_weights

        client, token, what = self.client, self.token, "fetching the weights from Dask"
        # stopped: a few seconds, else the weights of the last epoch are kept
        deadline = time.monotonic() + (WAIT_S if check else STOP_WAIT_S)
        try:
            if check:
                # pinned to their workers: one lost would hold a plain gather for ever
                asked = [
                    client.submit(train_digest, token, workers=[a], pure=False)
                    for a in self.addresses
                ]
                digests = gather_within(self.ex, asked, deadline, what, self.lanes)
                if len(set(digests)) != 1:
                    raise WorkerLost("the Dask workers' copies of the weights differ")
            w = client.submit(train_weights, token, workers=[self.addresses[0]], pure=False)
            (weights,) = gather_within(self.ex, [w], deadline, what, self.lanes[:1])
            self.trainer.params[...] = weights
        except Exception as exc:  # noqa: BLE001 - stopped mid-step: keep the last epoch's
            if not check:
                self.notes.append(f"the weights could not be fetched ({type(exc).__name__})")
                return
            if isinstance(exc, WorkerLost):
                raise
            raise WorkerLost(f"{what} failed: {exc}") from None

    def _report(self) -> None:
        """The run's Dask figures into the result (medians over the steps so far)."""

        def med(key, default=0.0):
            values = [f[key] for f in self.steps if key in f]
            return float(statistics.median(values)) if values else default

        g = self.grad_bytes
        info = self.ex.run_info()
        info.pop("notes", None)
        for k in ("params_bytes", "params_ms", "bytes_out_per_repeat", "bytes_back_per_repeat"):
            info.pop(k, None)
        for k in list(info):
            if k.startswith("task_") or k == "worker_transfer_bytes":
                info.pop(k)
        info["workers"] = info["workers"][: len(self.lanes)]
        info["training"] = {
            "combine": COMBINE_NAMES[self.cfg.combine],
            "weights": "kept on every worker; only gradients move",
            "gradient_bytes": g,
            "gradient_bytes_between_workers_per_step": int(med("between") * g),
            "gradient_bytes_to_partui_per_step": int(med("to_partui") * g),
            "gradient_bytes_from_partui_per_step": int(med("from_partui") * g),
            "step_ms": med("step_ms"),
            "exchange_ms": med("exchange_ms"),
            "steps": len(self.steps),
            "setup_ms": self.setup["ms"],
            "data_bytes_out": self.setup["data_bytes"],
            "weights_bytes_out": self.setup["weights_bytes"],
            **(
                {k: med(k) for k in ("gather_ms", "sum_ms", "scatter_ms")}
                if self.cfg.combine == "gather"
                else {}
            ),
        }
        info["notes"] = list(self.notes)
        info["error"] = self.error
        self.trainer.result.dask = info
