"""Real SGD training of the network on an executor: sync data parallel, or Hogwild!.

- `sync`: every step, the batch is cut between the workers (forward, loss and
  backward per slice), the partial gradients are combined (`reduce` or
  `locked`), and one SGD update is made: phases with a barrier between them.
- `hogwild`: each worker runs SGD on its own batches and writes every update
  into the shared weights with no lock (threads share the arrays; processes
  share one memory segment). Jobs of a few steps each are queued at once, so
  workers never wait for each other.

The data set, its order for the epoch, the weights and the gradients live in
the executor's arena, so process workers read batches without any copy.
After each epoch the test split is scored on the same pool.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from partui.kernels.grad import jobs as passes
from partui.kernels.grad import stamps, training
from partui.kernels.model.layers import LAYERS
from partui.kernels.plan.pass_axes import phase_name
from partui.kernels.plan.strategies import split_range
from partui.kernels.runtime.scratch import Cancelled
from partui.profiles.executors.jobs import run_jobs
from partui.profiles.executors.registry import executor_class, make_executor
from partui.profiles.records.events import Span, StepDone
from partui.profiles.records.train_config import (
    TrainConfig,
)
from partui.profiles.run.repeats import let_go_of_frames
from partui.profiles.system import blas, interrupts
from partui.profiles.train import measures
from partui.profiles.train.dask_trainer import train_epochs as whole_step_epochs

HOGWILD_STEPS = 4  # steps per queued Hogwild job: few enough for live progress
EVAL_CHUNK = 256
SPAN_SAMPLES = 40  # steps whose spans the result keeps


@dataclass
class EpochReport:
    epoch: int  # 1-based
    steps: int
    images: int
    wall_s: float  # this epoch's training time (the test scoring not included)
    elapsed_s: float  # since training started, scoring included
    train_loss: float
    train_accuracy: float
    test_accuracy: float
    images_per_s: float
    phase_ms: dict[str, float]  # busy time summed over workers, per phase
    worker_busy_share: list[float]  # each worker's share of the busy time
    eval_s: float = 0.0
    # hogwild: the version stamps' staleness per block write (median, p95, max, histogram)
    # and how many block writes overlapped another worker's; sync: 0 by construction
    staleness: dict | None = None
    overlapping_updates: int | None = None
    # each worker's median ms per phase of a step, the straggler gap (measures.step_phases)
    step_phases: dict | None = None


@dataclass
class TrainResult:
    config: TrainConfig
    data: str
    epochs: list[EpochReport] = field(default_factory=list)
    loss_curve: list[list[float]] = field(default_factory=list)  # [step, elapsed_s, loss]
    accuracy_curve: list[list[float]] = field(default_factory=list)  # [epoch, elapsed_s, test acc]
    spans: list[Span] = field(default_factory=list)  # a sample of steps; repeat = step
    pool_startup_ms: float = 0.0
    interrupted: bool = False
    weights: str | None = None  # where the learned weights were saved (.npz)
    dask: dict[str, Any] | None = None  # executor dask: cluster, workers, bytes and ms per step

    @property
    def test_accuracy(self) -> float:
        return self.epochs[-1].test_accuracy if self.epochs else float("nan")

    @property
    def staleness(self) -> dict | None:
        """The whole run's staleness: its Hogwild! epochs' histograms added up (a dashboard run
        may change its update rule between epochs); all sync: 0 by construction."""
        epochs = [e.staleness for e in self.epochs if e.staleness]
        measured = [e for e in epochs if e.get("measured")]
        if measured:
            return measures.staleness_summary(measures.merged_counts(measured))
        return measures.sync_staleness() if epochs else None

    @property
    def overlapping_updates(self) -> int | None:
        counts = [e.overlapping_updates for e in self.epochs]
        return sum(counts) if counts and None not in counts else None  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["spans"] = [s.to_dict() for s in self.spans]
        d["test_accuracy"] = self.test_accuracy
        d["staleness"] = self.staleness
        d["overlapping_updates"] = self.overlapping_updates
        return d


def _phase_busy(spans, workers: int) -> tuple[dict[str, float], list[float]]:
    phase: dict[str, float] = {}
    busy = [0.0] * workers
    for s in spans:
        ms = s.duration_ns / 1e6
        name = phase_name("train", s.phase)
        phase[name] = phase.get(name, 0.0) + ms
        if 0 <= s.worker < workers:
            busy[s.worker] += ms
    total = sum(busy)
    return phase, [b / total for b in busy] if total else []


class Trainer:
    """One training run. `stop` (a threading.Event) ends it after the current step."""

    def __init__(
        self,
        cfg: TrainConfig,
        data,
        emit: Callable | None = None,
        stop=None,
        params: np.ndarray | None = None,
        executor=None,
    ):
        """`params`: weights to start from (a run continued with new settings); default: seeded.
        `executor`: executor dask only, a started DaskExecutor to train on and leave open."""
        cfg.check()
        self.executor = executor
        self.cfg, self.data = cfg, data
        self.emit = emit or (lambda event: None)
        self.stop = stop
        self.params = initial_params(cfg.seed) if params is None else np.array(params, np.float32)
        self.result = TrainResult(cfg, data.describe())
        self.token = f"{os.getpid()}-{id(self)}-{time.perf_counter_ns()}"
        self.epoch_spans: list[Span] = []  # the current epoch's spans so far

    def run(self) -> TrainResult:
        for _ in self.epochs():
            pass
        return self.result

    def epochs(self):
        """The run an epoch at a time: yields each epoch's report as it is scored, so runs can
        be interleaved epoch by epoch (the benchmark's update-rule comparison). The pool
        and the shared arrays live until the generator ends or is closed."""
        cfg = self.cfg
        if executor_class(cfg.executor).runs_whole_steps:  # the workers keep the weights
            yield from whole_step_epochs(self, self.executor)
            return
        ex = make_executor(cfg.executor, cfg.workers)
        lock = None
        try:
            self.result.pool_startup_ms = ex.start()
            if cfg.combine == "locked":
                fd, lock = tempfile.mkstemp(prefix="partui-combine-", suffix=".lock")
                os.close(fd)
            yield from self._run_on(ex, lock)
        finally:
            ex.close()
            if lock:
                os.unlink(lock)

    def _run_on(self, ex, lock):
        cfg, data, res = self.cfg, self.data, self.result
        n, b = len(data.train_y), cfg.batch
        steps = n // b
        net = LAYERS["network"]
        sync_plan = passes.plan(
            net,
            "train",
            "batch" if cfg.workers > 1 else "none",
            b,
            cfg.workers,
            cfg.combine,
            cfg.lr,
            lock,
            in_place=True,
            momentum=cfg.momentum,
            together=ex.runs_jobs_together,
        )
        shapes = {
            k: v for k, v in sync_plan.shapes.items() if k not in ("x", "labels", "params.new")
        }
        shapes.setdefault("velocity", (training.NETWORK_PARAMS,))
        shapes.update(
            {
                "data.x": data.train_x.shape,
                "data.y": (n,),
                "order": (n,),
                "test.x": data.test_x.shape,
                "test.y": (len(data.test_y),),
                "losses": (steps,),
                "hits": (steps,),
            }
        )
        stamp = cfg.update == "hogwild" and cfg.stamp
        if stamp:  # int64 counters seen through float32 words: two per counter
            nblocks = len(stamps.blocks(training.NETWORK_LAYOUT)) - 1
            shapes["versions"] = (2 * stamps.counter_words(nblocks),)
            shapes["staleness"] = (steps, nblocks)
            shapes["overlaps"] = (steps,)
        evals = [
            Job_eval(i, r)
            for i, r in enumerate(
                split_range(len(data.test_y), max(cfg.workers, -(-len(data.test_y) // EVAL_CHUNK)))
            )
        ]
        shapes["eval"] = (len(evals),)
        arena = None
        try:
            with interrupts.deferred():  # as in Engine.run: a stop signal cannot strand it
                arena = ex.arena(shapes)
            a = arena.arrays
            a["data.x"][...] = data.train_x
            a["data.y"][...] = data.train_y
            a["test.x"][...] = data.test_x
            a["test.y"][...] = data.test_y
            a["params"][...] = self.params
            a["velocity"].fill(0.0)
            if stamp:
                a["versions"].view(np.int64).fill(0)
            rng = np.random.default_rng([cfg.seed, 7])
            sample_every = max(1, cfg.epochs * steps // SPAN_SAMPLES)
            t_start = time.perf_counter()
            flops = net.flops(b) + passes.backward_flops(net, b)
            with blas.limit(1):
                for epoch in range(1, cfg.epochs + 1):
                    a["order"][...] = rng.permutation(n)
                    a["losses"].fill(np.nan)
                    a["hits"].fill(0)
                    if stamp:
                        a["staleness"].fill(np.nan)
                        a["overlaps"].fill(0)
                    t0 = time.perf_counter()
                    try:
                        spans = self._epoch(
                            ex, arena, sync_plan, epoch, steps, flops, t_start, sample_every
                        )
                    except (KeyboardInterrupt, Cancelled) as exc:
                        # stop the workers (each at its next check), keep what was learned
                        interrupts.handled()
                        let_go_of_frames(exc)
                        ex.cancel()
                        ex.close()
                        self.params[...] = a["params"]
                        self.epoch_done(epoch, steps, a, t0, t_start, self.epoch_spans, None)
                        res.interrupted = True
                        return
                    self.params[...] = a["params"]
                    self.epoch_done(
                        epoch, steps, a, t0, t_start, spans, lambda: self._score(ex, arena, evals)
                    )
                    if res.epochs:
                        yield res.epochs[-1]
                    if self.stop is not None and self.stop.is_set():
                        res.interrupted = True
                        return
        finally:
            if arena is not None:
                arena.close()

    def _score(self, ex, arena, evals) -> float:
        run_jobs(ex, arena, evals, "network", self.cfg.kernel, 0, 0)
        return float(arena.arrays["eval"].sum()) / len(self.data.test_y)

    def score_here(self) -> float:
        """Test accuracy of the learned weights on the calling thread (after the pool stopped)."""
        from partui.kernels.runtime.scratch import Scratch

        params, scratch, hits = training.views(self.params, training.NETWORK_LAYOUT), Scratch(), 0
        for r0 in range(0, len(self.data.test_y), EVAL_CHUNK):
            r1 = min(len(self.data.test_y), r0 + EVAL_CHUNK)
            hits += int(
                (
                    training.predict(self.data.test_x[r0:r1], params, scratch)
                    == self.data.test_y[r0:r1]
                ).sum()
            )
        return hits / len(self.data.test_y)

    def epoch_done(self, epoch, steps, a, t0, t_start, spans, score) -> None:
        """Record an epoch (or the steps of it done before a stop): loss curve, accuracy, report."""
        cfg, res = self.cfg, self.result
        wall = time.perf_counter() - t0
        losses = a["losses"][:steps].astype(np.float64)
        done = np.flatnonzero(np.isfinite(losses))
        base = (epoch - 1) * steps
        for i, s in enumerate(sorted(done.tolist(), key=lambda s: self.step_ends.get(s, 0.0))):
            end = self.step_ends.get(s, t0 - t_start + wall * (i + 1) / max(1, len(done)))
            res.loss_curve.append([base + i + 1, end, float(losses[s])])
        if not len(done):
            return
        t_eval = time.perf_counter()
        try:
            try:
                acc = score() if score is not None else self.score_here()
            except Cancelled:  # a stop asked for as the epoch ended: score here instead
                acc = self.score_here()
        except KeyboardInterrupt:  # a second Ctrl+C: no score
            interrupts.handled()
            acc = float("nan")
        eval_s = time.perf_counter() - t_eval
        phase, share = _phase_busy(spans, cfg.workers)
        images = len(done) * cfg.batch
        report = EpochReport(
            epoch,
            len(done),
            images,
            wall,
            time.perf_counter() - t_start,
            float(losses[done].mean()),
            float(a["hits"][done].sum()) / images,
            acc,
            images / wall if wall else 0.0,
            phase,
            share,
            eval_s,
        )
        self._measures(report, a, done, spans)
        res.epochs.append(report)
        res.accuracy_curve.append([epoch, report.elapsed_s, acc])
        self.emit(report)

    def _measures(self, report: EpochReport, a, done, spans) -> None:
        """The epoch's staleness and overlaps (hogwild: from the stamps), and its step phases."""
        cfg = self.cfg
        hogwild = cfg.update == "hogwild"
        if not hogwild:
            report.staleness, report.overlapping_updates = measures.sync_staleness(), 0
        elif "staleness" in a:
            report.staleness, report.overlapping_updates = measures.epoch_staleness(
                a["staleness"], a["overlaps"], done
            )
        report.step_phases = measures.step_phases(spans, cfg.workers, barrier=not hogwild)

    def _epoch(
        self, ex, arena, sync_plan, epoch, steps, flops, t_start, sample_every
    ) -> list[Span]:
        cfg, res = self.cfg, self.result
        a = arena.arrays
        # the spans of the steps done so far: a stopped epoch reports what they measured
        spans: list[Span] = []
        self.epoch_spans = spans
        self.step_ends: dict[int, float] = {}  # step in the epoch -> seconds since the start
        base = (epoch - 1) * steps

        def keep(step_spans, step):
            spans.extend(step_spans)
            if (base + step) % sample_every == 0:
                res.spans.extend(replace(s, repeat=base + step) for s in step_spans)

        def stopped():
            return self.stop is not None and self.stop.is_set()

        if cfg.update == "sync":
            for step in range(steps):
                if stopped():
                    raise Cancelled()
                interrupts.raise_if_swallowed()
                for k in sync_plan.zero:  # the locked accumulator, the tasks' arrivals
                    a[k].fill(0.0)
                step_spans = []
                for phase in sync_plan.phases:
                    jobs = [
                        replace(j, offset=step * cfg.batch) if j.kind == "train" else j
                        for j in phase
                    ]
                    step_spans += run_jobs(ex, arena, jobs, "network", cfg.kernel, 0, base + step)
                stats = a["stats"]
                loss = float(stats[:, 0].sum()) / cfg.batch
                a["losses"][step] = loss
                a["hits"][step] = float(stats[:, 1].sum())
                keep(step_spans, step)
                elapsed = time.perf_counter() - t_start
                self.step_ends[step] = elapsed
                self.emit(
                    StepDone(
                        base + step + 1, epoch, steps, elapsed, loss, (base + step + 1) * cfg.batch
                    )
                )
            return spans

        # hogwild: every job queued at once; workers take them as they finish
        jobs = [
            passes.Job(
                i,
                "hogwild",
                batch=(0, cfg.batch),
                offset=s0 * cfg.batch,
                steps=s1 - s0,
                step0=s0,
                lr=cfg.lr,
                momentum=cfg.momentum,
                units=flops,
                token=self.token,
                stamp=cfg.stamp,
            )
            for i, (s0, s1) in enumerate(
                (s, min(steps, s + HOGWILD_STEPS)) for s in range(0, steps, HOGWILD_STEPS)
            )
        ]
        done = itertools.count(1)

        arrived: list[Span] = []

        def on_span(span):  # from the pool's callback threads: progress only
            arrived.append(span)
            if span.phase == passes.UPDATE:
                step = span.repeat
                elapsed = time.perf_counter() - t_start
                self.step_ends[step] = elapsed
                n = base + next(done)
                loss = float(a["losses"][step])
                self.emit(StepDone(n, epoch, steps, elapsed, loss, n * cfg.batch))
                if stopped():
                    ex.cancel()

        self.epoch_spans = arrived  # the jobs finished before a stop
        got = run_jobs(ex, arena, jobs, "network", cfg.kernel, 0, 0, on_span)
        by_step: dict[int, list[Span]] = {}
        for s in got:
            by_step.setdefault(s.repeat, []).append(s)
        for step, step_spans in sorted(by_step.items()):
            keep(step_spans, step)
        return spans


def initial_params(seed: int) -> np.ndarray:
    """The seeded network weights, the last layer's scaled down so the first predictions are
    near uniform (loss about ln 26) rather than confidently wrong."""
    flat = training.flat_params(seed)
    last = next(sub.name for sub in reversed(training.PARAM_LAYERS))
    training.views(flat, training.NETWORK_LAYOUT)[f"{last}.weight"][...] *= np.float32(0.1)
    return flat


def Job_eval(index: int, rows: tuple[int, int]):
    return passes.Job(index, "eval", batch=rows, units=LAYERS["network"].flops(rows[1] - rows[0]))


def save_weights(path, flat: np.ndarray, overwrite: bool = False, unique: bool = False):
    """The learned weights as an .npz of PyTorch-layout arrays ("conv1.weight", ...), through the
    safe writer (atomic); returns the path written."""
    import io

    from partui.profiles.files.safe_files import write_bytes

    buf = io.BytesIO()
    np.savez(buf, **training.views(flat, training.NETWORK_LAYOUT))  # type: ignore[arg-type]
    return write_bytes(path, buf.getvalue(), overwrite=overwrite, unique=unique)
