"""The engine: run one configuration on an executor, stamp every task, verify the answer.

RunConfig -> inputs (seeded) -> plan (tasks) -> executor, repeat by repeat
          -> events (spans as tasks finish) -> RunResult (times, spans, error)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from partui.kernels.model.layers import get_layer
from partui.kernels.plan import strategies
from partui.kernels.plan.pass_axes import TRANSFER
from partui.profiles.executors.dask_cluster import DaskExecutor
from partui.profiles.executors.local import (
    Executor,
    ProcessExecutor,
    ThreadExecutor,
    make_executor,
    pool_refusal,
)
from partui.profiles.records.config import (
    MAX_WORKERS,  # noqa: F401 (re-exported)
    ConfigError,
    RunCancelledError,  # noqa: F401 (re-exported)
    RunConfig,
    default_workers,  # noqa: F401 (re-exported)
)
from partui.profiles.records.events import (
    RunStarted,
    Span,
    SpanDone,
)
from partui.profiles.records.results import RunResult, timing
from partui.profiles.run.inputs import _input, _params, _reference
from partui.profiles.run.pipeline import Pipeline
from partui.profiles.run.repeats import (
    report,
    stopped_runs_reported,
    timed_repeats,
    timing_conditions,
)
from partui.profiles.run.sampler import IDLE_HZ, SAMPLE_HZ, CpuSampler
from partui.profiles.run.verification import RELATIVE_TOLERANCE, verify  # noqa: F401 (re-exported)
from partui.profiles.system import blas


class Engine:
    """Runs configurations; keeps pools warm between runs. Use as a context manager."""

    def __init__(self, sample_hz: float = SAMPLE_HZ, monitor: CpuSampler | None = None):
        """`sample_hz`: CPU samples per second while a run works (0: no sampling).

        `monitor`: an always-on CpuSampler to use for runs (the dashboard's engine samples
        between runs too); without one, each run starts and stops its own.
        """
        self.sample_hz = sample_hz
        self.monitor = monitor
        # (name, workers), and the scheduler's address for dask
        self._executors: dict[tuple, Executor] = {}
        self.current: Executor | None = None  # the executor of the run going on: cancel() stops it
        self._run = 0
        self._pipeline: Pipeline | None = None  # its buffers are reused from run to run

    # -- executors ----------------------------------------------------------
    def executor(self, name: str, workers: int, scheduler: str = "") -> Executor:
        key: tuple = (name, workers, scheduler) if name == "dask" else (name, workers)
        ex = self._executors.get(key)
        if ex is None:
            # One process pool (and one Dask cluster) at a time: idle processes would hold
            # memory and pids.
            if name in ("processes", "dask"):
                for k in [k for k in self._executors if k[0] == name]:
                    self._executors.pop(k).close()
            if name == "dask":
                ex = self._executors[key] = DaskExecutor(workers, scheduler)
            else:
                ex = self._executors[key] = make_executor(name, workers)
        return ex

    def cancel(self) -> None:
        if self.current is not None:
            self.current.cancel()

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
        if cfg.pass_kind != "forward" and cfg.executor == "dask":
            from partui.profiles.run.dask_step import run_dask_train

            return run_dask_train(self, cfg, emit, keep_arrays)
        if cfg.pass_kind != "forward":
            from partui.profiles.run.passes import run_pass

            return run_pass(self, cfg, emit, keep_arrays)
        emit = emit or (lambda event: None)
        run_id = self.new_run()
        layer = get_layer(cfg.layer)
        x = _input(cfg.layer, cfg.batch, cfg.seed)
        params = _params(cfg.layer, cfg.seed)
        plan = pipeline = None
        if cfg.strategy == "pipeline":
            pipeline = self._pipeline
            if pipeline is None or pipeline.key != (cfg.kernel, cfg.batch, cfg.workers):
                pipeline = self._pipeline = Pipeline(cfg.kernel, cfg.batch, cfg.workers)
        else:
            plan = strategies.plan(layer, cfg.strategy, cfg.batch, cfg.workers)
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
        ex = self.executor(cfg.executor, cfg.workers, cfg.scheduler)
        ex.reset()
        self.current = ex
        startup = ex.start()
        sampler = None
        if self.monitor is not None:  # before RunStarted: the samples after it are this run's
            sampler = self.monitor
            sampler.watch(ex.worker_ids(), ex.processes, self.sample_hz or IDLE_HZ)
            sampler.record()
        emit(RunStarted(run_id, cfg, startup))
        arena = ex.arena(shapes)
        on_span = lambda s: emit(SpanDone(s))  # noqa: E731

        def before(rep: int) -> None:
            arena.arrays["out"].fill(np.nan)  # a region no task writes cannot pass

        def one(rep: int) -> list[Span]:
            if plan is None:
                assert pipeline is not None
                return pipeline.repeat(ex, arena.arrays, run_id, rep, on_span)
            spans = []
            for phase in plan.phases:
                spans += ex.run_phase(layer, cfg.kernel, arena, phase, run_id, rep, on_span)
            return spans

        def after(rep: int, spans: list[Span]) -> list[Span]:
            if isinstance(ex, DaskExecutor):  # read from the cluster, after the timing
                return ex.collect_spans(on_span)
            return spans

        try:
            with stopped_runs_reported(self, ex, run_id, cfg, emit):
                arena.arrays["x"][...] = x
                for k, v in params.items():
                    arena.arrays[k][...] = v
                if sampler is None and self.sample_hz:
                    sampler = CpuSampler(
                        ex.worker_ids(), emit, ex.processes, self.sample_hz
                    ).start()
                with timing_conditions(ex):
                    timed = timed_repeats(
                        run_id, cfg, ex.cancel_event, emit, one, before, after, sampler
                    )
                output = np.array(arena.arrays["out"])
        finally:
            samples = []
            if sampler is self.monitor and sampler is not None:
                samples = sampler.stop_recording()
                sampler.watch({}, False, IDLE_HZ)
            elif sampler:
                sampler.stop()
                samples = sampler.samples
            arena.close()
            self.current = None
        with blas.limit(1):  # as fast in float64 here, and leaves no BLAS thread spinning
            err, tol, ok = verify(output, _reference(cfg.layer, cfg.batch, cfg.seed))
        times, spans = timed.times_ms, timed.spans
        computed = [s for s in spans if s.phase != TRANSFER]  # a Dask run's moves are not tasks
        result = self.result(
            cfg,
            layer,
            times,
            spans,
            err,
            tol,
            ok,
            startup,
            tasks=len(computed) // max(1, len(times)),
        )
        result.repeat_start_ns = timed.starts_ns
        result.worker_cpus = ex.worker_cpus
        if sampler:
            result.cpu_samples = samples
            result.on_cpu_ratio = timed.on_cpu_ratio(cfg.workers, computed)
        if isinstance(ex, DaskExecutor):
            result.dask = ex.run_info()
            # a Dask worker's CPU time holds its own messaging too: no on-CPU ratio of tasks
            result.on_cpu_ratio = [float("nan")] * cfg.workers
        if keep_arrays:
            result.arrays = {"input": x, "output": output, **params}
        return report(result, run_id, err, tol, emit)

    def stop_now(self, ex: Executor) -> None:
        """Ctrl+C: stop workers at once; threads stop at their next cancel check."""
        ex.cancel()
        if isinstance(ex, ProcessExecutor):
            ex.kill()
        elif isinstance(ex, (ThreadExecutor, DaskExecutor)):
            ex.close()
            self._executors = {k: v for k, v in self._executors.items() if v is not ex}

    def new_run(self) -> int:
        """The id of a run that starts now (its events carry it)."""
        self._run += 1
        return self._run

    def result(self, cfg, layer, times, spans, err, tol, ok, startup, tasks) -> RunResult:
        """A verified run's record: its timed repeats summarised, each worker's median busy
        time (transfers apart), the error against the reference."""
        busy = np.zeros((cfg.workers, len(times)))
        for span in spans:
            if span.phase == TRANSFER:  # busy is compute; a Dask run's transfers are apart
                continue
            if 0 <= span.worker < cfg.workers and 0 <= span.repeat < len(times):
                busy[span.worker, span.repeat] += span.duration_ns / 1e6
        return RunResult(
            config=cfg,
            blas_threads=cfg.blas_threads,
            **timing(times),
            max_abs_error=err,
            tolerance=tol,
            ok=ok,
            tasks=tasks,
            flops=layer.flops(cfg.batch),
            spans=spans,
            worker_busy_ms=[float(np.median(b)) for b in busy],
            pool_startup_ms=startup,
        )


def _memory_shortfall(shapes: dict) -> str | None:
    """The run's arrays (float32), its float64 reference and error: do they fit under the
    process's limits (ulimit -v, cgroup memory.max, free memory)? One line if not."""
    from partui.profiles.system.memory_limits import shortfall

    out = int(np.prod(shapes["out"]))
    need = 4 * sum(int(np.prod(s)) for s in shapes.values()) + 3 * 8 * out
    return shortfall(need) if need > 64 * 2**20 else None  # small runs: not worth a look
