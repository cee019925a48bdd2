"""The engine: run one configuration on an executor, stamp every task, verify the answer.

RunConfig -> inputs (seeded) -> plan (tasks) -> executor, repeat by repeat
          -> events (spans as tasks finish) -> RunResult (times, spans, error)
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from typing import Any

import numpy as np

from partui.kernels import reference, strategies
from partui.kernels.compute import KERNEL_MODULES, stage_forward
from partui.kernels.layers import NETWORK, get_layer, make_input, make_params
from partui.kernels.scratch import Cancelled, Scratch

from . import blas, worker
from .config import (
    MAX_WORKERS,  # noqa: F401 (re-exported)
    ConfigError,
    RunCancelledError,  # noqa: F401 (re-exported)
    RunConfig,
    default_workers,  # noqa: F401 (re-exported)
)
from .events import (
    CpuSample,
    RepeatDone,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
    Span,
    SpanDone,
)
from .executors import (
    Executor,
    ProcessExecutor,
    ThreadExecutor,
    WorkerLost,
    _wait_all,
    make_executor,
    pool_refusal,
)
from .sampler import IDLE_HZ, SAMPLE_HZ, CpuSampler, on_cpu_ratios
from .stats import summarize

RELATIVE_TOLERANCE = 1e-4
PIPELINE_QUEUE = 2  # bounded queues between stages
PIPELINE_SLOTS = PIPELINE_QUEUE + 3  # buffers per stage: never reused while a later stage reads one


@dataclass
class RunResult:
    config: dict[str, Any]
    blas_threads: int
    times_ms: list[float]
    median_ms: float
    min_ms: float
    max_ms: float
    q1_ms: float
    q3_ms: float
    max_abs_error: float
    tolerance: float
    ok: bool
    tasks: int
    flops: int
    spans: list[Span]
    worker_busy_ms: list[float]  # per worker: median over repeats of its summed task time
    pool_startup_ms: float
    error: str | None = None
    arrays: dict[str, np.ndarray] | None = field(default=None, repr=False)  # kept on request
    # per worker: CPU time / busy wall time over the timed repeats (NaN: not measured)
    on_cpu_ratio: list[float] = field(default_factory=list)
    cpu_samples: list[CpuSample] = field(default_factory=list, repr=False)
    # per timed repeat: its start on the spans' clock (perf_counter_ns); the timeline spans
    # start .. start + wall, so the hand-out before the first task and the collection after
    # the last show as idle time
    repeat_start_ns: list[int] = field(default_factory=list)

    @property
    def gflops(self) -> float:
        return self.flops / (self.median_ms * 1e6) if self.median_ms > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "arrays"}
        d["spans"] = [s.to_dict() for s in self.spans]
        d["cpu_samples"] = [s.to_dict() for s in self.cpu_samples]
        d.update(
            {
                k: self.config[k]
                for k in ("layer", "strategy", "kernel", "executor", "workers", "batch")
            }
        )
        d["gflops"] = self.gflops
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunResult:
        """Rebuild a result from `to_dict()` output (derived keys are ignored)."""
        names = {f.name for f in fields(cls)} - {"arrays"}
        values = {k: v for k, v in d.items() if k in names}
        values["spans"] = [Span(**s) for s in d.get("spans", [])]
        values["cpu_samples"] = [CpuSample.from_dict(s) for s in d.get("cpu_samples", [])]
        # JSON has no NaN / inf: snapshots store them as null
        values["on_cpu_ratio"] = [
            float("nan") if v is None else v for v in d.get("on_cpu_ratio", [])
        ]
        if values.get("max_abs_error") is None:
            values["max_abs_error"] = float("inf")
        return cls(**values)


@lru_cache(maxsize=4)
def _params(layer_name: str, seed: int) -> dict[str, np.ndarray]:
    return make_params(get_layer(layer_name), seed)


@lru_cache(maxsize=4)
def _input(layer_name: str, batch: int, seed: int) -> np.ndarray:
    return make_input(get_layer(layer_name), batch, seed)


@lru_cache(maxsize=4)
def _reference(layer_name: str, batch: int, seed: int) -> np.ndarray:
    layer = get_layer(layer_name)
    return reference.forward(layer, _input(layer_name, batch, seed), _params(layer_name, seed))


def verify(output: np.ndarray, expected: np.ndarray) -> tuple[float, float, bool]:
    """(max abs error, tolerance, ok): tolerance is 1e-4 of the output's magnitude."""
    magnitude = float(np.abs(expected).max()) if expected.size else 0.0
    tol = RELATIVE_TOLERANCE * max(magnitude, float(np.finfo(np.float32).tiny))
    err = np.abs(output.astype(np.float64) - expected)
    max_err = float(err.max()) if err.size else 0.0
    ok = bool(np.isfinite(output).all()) and max_err <= tol
    if not np.isfinite(max_err):
        max_err = float("inf")
    return max_err, tol, ok


class Engine:
    """Runs configurations; keeps pools warm between runs. Use as a context manager."""

    def __init__(self, sample_hz: float = SAMPLE_HZ, monitor: CpuSampler | None = None):
        """`sample_hz`: CPU samples per second while a run works (0: no sampling).

        `monitor`: an always-on CpuSampler to use for runs (the dashboard's engine samples
        between runs too); without one, each run starts and stops its own.
        """
        self.sample_hz = sample_hz
        self.monitor = monitor
        self._executors: dict[tuple[str, int], Executor] = {}
        self._current: Executor | None = None
        self._run = 0

    # -- executors ----------------------------------------------------------
    def executor(self, name: str, workers: int) -> Executor:
        key = (name, workers)
        ex = self._executors.get(key)
        if ex is None:
            # One process pool at a time: idle processes would hold memory and pids.
            if name == "processes":
                for k in [k for k in self._executors if k[0] == "processes"]:
                    self._executors.pop(k).close()
            ex = self._executors[key] = make_executor(name, workers)
        return ex

    def cancel(self) -> None:
        if self._current is not None:
            self._current.cancel()

    def close(self) -> None:
        for ex in self._executors.values():
            ex.close()
        self._executors.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- running ------------------------------------------------------------
    def run(
        self, cfg: RunConfig, emit: Callable | None = None, keep_arrays: bool = False
    ) -> RunResult:
        """Run `cfg` (warm-ups, then repeats), verify it, and return the result.

        Raises ConfigError / NotApplicable before any work; RunCancelledError when
        cancelled; KeyboardInterrupt after stopping the workers.
        """
        cfg.check()
        if cfg.pass_kind != "forward":
            from .passes import run_pass

            return run_pass(self, cfg, emit, keep_arrays)
        emit = emit or (lambda event: None)
        self._run += 1
        run_id = self._run
        layer = get_layer(cfg.layer)
        x = _input(cfg.layer, cfg.batch, cfg.seed)
        params = _params(cfg.layer, cfg.seed)
        plan = (
            None
            if cfg.strategy == "pipeline"
            else strategies.plan(layer, cfg.strategy, cfg.batch, cfg.workers)
        )
        shapes = {
            "x": x.shape,
            "out": layer.out_array_shape(cfg.batch),
            **{k: v.shape for k, v in params.items()},
        }
        if plan is not None and plan.partials:
            shapes["partials"] = (plan.partials, *layer.out_array_shape(cfg.batch))
        short = _memory_shortfall(shapes)  # before any pool starts or array is made
        if short:
            raise ConfigError(f"{cfg.label()}: {short}")
        if cfg.executor == "processes" and (cfg.executor, cfg.workers) not in self._executors:
            refusal = pool_refusal(cfg.workers)
            if refusal:
                raise ConfigError(refusal)
        ex = self.executor(cfg.executor, cfg.workers)
        ex.reset()
        self._current = ex
        startup = ex.start()
        sampler = None
        if self.monitor is not None:  # before RunStarted: the samples after it are this run's
            sampler = self.monitor
            sampler.watch(ex.worker_ids(), ex.processes, self.sample_hz or IDLE_HZ)
            sampler.record()
        emit(RunStarted(run_id, cfg, startup))
        arena = ex.arena(shapes)
        spans: list[Span] = []
        times: list[float] = []
        starts: list[int] = []
        cpu_marks = []  # worker CPU times at the start and end of the timed repeats
        try:
            arena.arrays["x"][...] = x
            for k, v in params.items():
                arena.arrays[k][...] = v
            on_span = lambda s: emit(SpanDone(s))  # noqa: E731
            if sampler is None and self.sample_hz:
                sampler = CpuSampler(ex.worker_ids(), emit, ex.processes, self.sample_hz).start()
            with blas.limit(ex.blas_threads):
                for rep in range(-cfg.warmup, cfg.repeats):
                    if ex.cancel_event.is_set():  # kernels that never check still stop here
                        raise Cancelled()
                    arena.arrays["out"].fill(np.nan)  # a region no task writes cannot pass
                    if rep == 0 and sampler:
                        cpu_marks.append(sampler.worker_cpu())
                    t0 = time.perf_counter_ns()
                    if plan is None:
                        rep_spans = self._pipeline_repeat(
                            ex, layer, cfg, arena, run_id, rep, on_span
                        )
                    else:
                        rep_spans = []
                        for phase in plan.phases:
                            rep_spans += ex.run_phase(
                                layer, cfg.kernel, arena, phase, run_id, rep, on_span
                            )
                    wall = time.perf_counter_ns() - t0
                    emit(RepeatDone(run_id, rep, wall, t0))
                    if rep >= 0:
                        times.append(wall / 1e6)
                        starts.append(t0)
                        spans += rep_spans
            if sampler:
                cpu_marks.append(sampler.worker_cpu())
            output = np.array(arena.arrays["out"])
        except Cancelled:
            emit(RunCancelled(run_id, cfg))
            raise RunCancelledError("run cancelled") from None
        except KeyboardInterrupt:
            self._stop_now(ex)
            emit(RunCancelled(run_id, cfg))
            raise
        except WorkerLost as exc:
            emit(RunFailed(run_id, str(exc), config=cfg))
            raise
        finally:
            samples = []
            if sampler is self.monitor and sampler is not None:
                samples = sampler.stop_recording()
                sampler.watch({}, False, IDLE_HZ)
            elif sampler:
                sampler.stop()
                samples = sampler.samples
            arena.close()
            self._current = None
        err, tol, ok = verify(output, _reference(cfg.layer, cfg.batch, cfg.seed))
        result = self._result(
            cfg, layer, times, spans, err, tol, ok, startup, tasks=len(spans) // max(1, len(times))
        )
        result.repeat_start_ns = starts
        if sampler:
            result.cpu_samples = samples
            if len(cpu_marks) == 2:
                # busy summed over all timed repeats: the same stretch as the CPU marks
                total_busy = [0.0] * cfg.workers
                for span in spans:
                    if 0 <= span.worker < cfg.workers:
                        total_busy[span.worker] += span.duration_ns / 1e6
                result.on_cpu_ratio = on_cpu_ratios(cpu_marks[0], cpu_marks[1], total_busy)
        if keep_arrays:
            result.arrays = {"input": x, "output": output, **params}
        if ok:
            emit(RunFinished(run_id, result))
        else:
            result.error = (
                f"max abs error {err:.3g} exceeds tolerance {tol:.3g}"
                if np.isfinite(err)
                else "the output holds NaN or infinite values"
            )
            emit(RunFailed(run_id, result.error, result, cfg.to_dict()))
        return result

    def _stop_now(self, ex: Executor) -> None:
        """Ctrl+C: stop workers at once; threads stop at their next cancel check."""
        ex.cancel()
        if isinstance(ex, ProcessExecutor):
            ex.kill()
        elif isinstance(ex, ThreadExecutor):
            ex.close()
            self._executors = {k: v for k, v in self._executors.items() if v is not ex}

    def _result(self, cfg, layer, times, spans, err, tol, ok, startup, tasks) -> RunResult:
        s = summarize(times)
        busy = np.zeros((cfg.workers, len(times)))
        for span in spans:
            if 0 <= span.worker < cfg.workers and 0 <= span.repeat < len(times):
                busy[span.worker, span.repeat] += span.duration_ns / 1e6
        return RunResult(
            config=cfg.to_dict(),
            blas_threads=cfg.blas_threads,
            times_ms=times,
            median_ms=s.median,
            min_ms=s.min,
            max_ms=s.max,
            q1_ms=s.q1,
            q3_ms=s.q3,
            max_abs_error=err,
            tolerance=tol,
            ok=ok,
            tasks=tasks,
            flops=layer.flops(cfg.batch),
            spans=spans,
            worker_busy_ms=[float(np.median(b)) for b in busy],
            pool_startup_ms=startup,
        )

    # -- pipeline -----------------------------------------------------------
    def _pipeline_repeat(self, ex: Executor, layer, cfg, arena, run_id, rep, on_span):
        """Stages on their own threads, linked by bounded queues; micro-batches flow through."""
        stages = strategies.pipeline_stages(NETWORK, cfg.workers)
        micro = strategies.micro_batches(cfg.batch, cfg.workers)
        ops = KERNEL_MODULES[cfg.kernel]
        links: list[queue.Queue] = [queue.Queue(PIPELINE_QUEUE) for _ in range(len(stages) - 1)]
        arrays = arena.arrays
        key = (cfg.kernel, cfg.batch, cfg.workers)
        if getattr(self, "_pipe_key", None) != key:  # buffers reused across repeats
            self._pipe_key = key
            self._pipe_scratch = [[Scratch() for _ in range(PIPELINE_SLOTS)] for _ in stages]
        cancel = ex.cancel_event

        def get(q):
            while True:
                try:
                    return q.get(timeout=0.05)
                except queue.Empty:
                    if cancel.is_set():
                        raise Cancelled() from None

        def put(q, item):
            while True:
                try:
                    return q.put(item, timeout=0.05)
                except queue.Full:
                    if cancel.is_set():
                        raise Cancelled() from None

        def stage_loop(s: int) -> list[Span]:
            me = worker._state().index  # noqa: SLF001
            flops = sum(sub.flops(1) for sub in stages[s])
            out = []
            for m, (n0, n1) in enumerate(micro):
                inp = arrays["x"][n0:n1] if s == 0 else get(links[s - 1])
                start = time.perf_counter_ns()
                y = stage_forward(
                    ops, stages[s], inp, arrays, self._pipe_scratch[s][m % PIPELINE_SLOTS], cancel
                )
                if s == len(stages) - 1:
                    arrays["out"][n0:n1] = y
                end = time.perf_counter_ns()
                span = Span(
                    me,
                    worker.threading.get_native_id(),
                    start,
                    end,
                    flops * (n1 - n0),
                    task=s * len(micro) + m,
                    phase=s,
                    repeat=rep,
                    run=run_id,
                )
                on_span(span)
                out.append(span)
                if s < len(stages) - 1:
                    put(links[s], y)
            return out

        futures = [ex.submit(stage_loop, s) for s in range(len(stages))]
        return [span for spans in _wait_all(futures, ex.cancel) for span in spans]


def _memory_shortfall(shapes: dict) -> str | None:
    """The run's arrays (float32), its float64 reference and error: do they fit under the
    process's limits (ulimit -v, cgroup memory.max, free memory)? One line if not."""
    from .memory_limits import shortfall

    out = int(np.prod(shapes["out"]))
    need = 4 * sum(int(np.prod(s)) for s in shapes.values()) + 3 * 8 * out
    return shortfall(need) if need > 64 * 2**20 else None  # small runs: not worth a look


def config_with(cfg: RunConfig, **changes) -> RunConfig:
    return replace(cfg, **changes)
