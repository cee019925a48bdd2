"""The engine: the one place a run's sequence is written.

RunConfig -> the pass (its arrays, one repeat, its checks) and the executor (who runs it)
          -> warm-ups, then timed repeats (events out as tasks finish)
          -> the outputs checked against the float64 reference -> RunResult

What a pass changes is the pass object's (run.passes); what an executor changes is behind
the executor protocol (executors.base). The engine asks both and branches on neither's class.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from partui.kernels.plan.pass_axes import TRANSFER
from partui.profiles.executors.base import Executor
from partui.profiles.executors.registry import executor_class
from partui.profiles.records.config import RunConfig
from partui.profiles.records.events import RunStarted, SpanDone
from partui.profiles.records.limits import ConfigError
from partui.profiles.records.results import RunResult, timing
from partui.profiles.run.passes import make_pass
from partui.profiles.run.repeats import (
    let_go_of_frames,
    report,
    stopped_runs_reported,
    timed_repeats,
    timing_conditions,
)
from partui.profiles.run.sampler import IDLE_HZ, SAMPLE_HZ, CpuSampler
from partui.profiles.system import blas, interrupts
from partui.profiles.system.conditions import read_conditions

# Idle executors kept warm for later runs, the least recently used closed first. Each
# (executor, workers) pair is a pool of its own, and every parked thread holds its stack and
# its BLAS and numba state (about a third of a MB), so a session that visits many worker
# counts (the dashboard's keys) would otherwise keep hundreds of threads. The bounds hold a
# bench's or a sweep's executors on this machine: a few executors at each worker count.
KEPT_EXECUTORS = 12
KEPT_WORKERS = max(32, 4 * (os.cpu_count() or 1))


class Engine:
    """Runs configurations; keeps pools warm between runs (the latest KEPT_EXECUTORS, with at
    most KEPT_WORKERS workers together; the latest always). Use as a context manager."""

    def __init__(self, sample_hz: float = SAMPLE_HZ, monitor: CpuSampler | None = None):
        """`sample_hz`: CPU samples per second while a run works (0: no sampling).

        `monitor`: an always-on CpuSampler to use for runs (the dashboard's engine samples
        between runs too); without one, each run starts and stops its own.
        """
        self.sample_hz = sample_hz
        self.monitor = monitor
        # by the executor class's key, the least recently used first
        self._executors: dict[tuple, Executor] = {}
        self.current: Executor | None = None  # the executor of the run going on: cancel() stops it
        self._runs = 0
        self._pipelines: dict = {}  # pipeline buffers, reused from run to run

    # -- executors ----------------------------------------------------------
    def executor(self, name: str, workers: int, scheduler: str = "") -> Executor:
        cls = executor_class(name)
        key = cls.key(workers, scheduler)
        ex = self._executors.get(key)
        if ex is None:
            if cls.exclusive:
                for k in [k for k, v in self._executors.items() if v.name == cls.name]:
                    self._executors.pop(k).close()
            ex = cls.made(workers, scheduler)
        self._executors.pop(key, None)
        self._executors[key] = ex  # the most recently used last
        self._close_idle()
        return ex

    def _close_idle(self) -> None:
        """Close the least recently used executors beyond KEPT_EXECUTORS and KEPT_WORKERS (the
        latest one is always kept, however many workers it has)."""
        while len(self._executors) > 1:
            kept = list(self._executors.values())
            workers = sum(ex.workers for ex in kept)
            if len(kept) <= KEPT_EXECUTORS and workers <= KEPT_WORKERS:
                return
            self._executors.pop(next(iter(self._executors))).close()

    @property
    def kept(self) -> list[Executor]:
        """The executors kept warm, the least recently used first."""
        return list(self._executors.values())

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
        emit = emit or _ignore
        run_id = self.new_run()
        cls = executor_class(cfg.executor)
        pas = make_pass(cfg, cls, self._pipelines)
        try:
            short = _memory_shortfall(pas.shapes)  # before any pool starts or array is made
            if short:
                raise ConfigError(f"{cfg.label()}: {short}")
            if cls.key(cfg.workers, cfg.scheduler) not in self._executors:
                refusal = cls.refusal(cfg.workers, cfg.scheduler)
                if refusal:
                    raise ConfigError(refusal)
            return self._sequence(run_id, cfg, pas, emit, keep_arrays)
        except BaseException as exc:
            let_go_of_frames(exc)
            raise
        finally:
            pas.close()

    def _sequence(self, run_id, cfg, pas, emit, keep_arrays) -> RunResult:
        ex = self.executor(cfg.executor, cfg.workers, cfg.scheduler)
        ex.reset()
        self.current = ex
        try:
            startup = ex.start()
            ex.prepare_run()
        except BaseException:
            self.current = None
            raise
        sampler = None
        if self.monitor is not None:  # before RunStarted: the samples after it are this run's
            sampler = self.monitor
            sampler.watch(ex.worker_ids(), ex.processes, self.sample_hz or IDLE_HZ)
            sampler.record()
        conditions = read_conditions()  # before any repeat: the reading is not timed
        emit(RunStarted(run_id, cfg, startup, conditions=conditions))
        on_span = lambda s: emit(SpanDone(s))  # noqa: E731
        samples = []
        arena = None
        try:
            # a stop signal landing between making the shared memory and holding it here
            # would leave it behind
            with interrupts.deferred():
                arena = ex.arena(pas.shapes)
            arrays = arena.arrays

            def before(rep: int) -> None:
                pas.before(arrays, rep)

            def one(rep: int):
                return pas.one(ex, arena, run_id, rep, on_span)

            def after(rep: int, spans):
                spans = ex.collect_spans(spans, on_span)  # from the workers, after the timing
                pas.after(rep, spans, on_span)
                return spans

            with stopped_runs_reported(self, ex, run_id, cfg, emit):
                pas.load(arrays)
                if sampler is None and self.sample_hz:
                    sampler = CpuSampler(
                        ex.worker_ids(), emit, ex.processes, self.sample_hz
                    ).start()
                with timing_conditions(ex):
                    timed = timed_repeats(
                        run_id, cfg, ex.cancel_event, emit, one, before, after, sampler
                    )
                got = pas.collect(arrays)
        finally:
            if sampler is self.monitor and sampler is not None:
                samples = sampler.stop_recording()
                sampler.watch({}, False, IDLE_HZ)
            elif sampler:
                sampler.stop()
                samples = sampler.samples
            if arena is not None:
                arena.close()
            self.current = None
        with blas.limit(1):  # as fast in float64 here, and leaves no BLAS thread spinning
            err, tol, ok = pas.check(got)
        times, spans = timed.times_ms, timed.spans
        computed = [s for s in spans if s.phase != TRANSFER]  # moves between machines
        result = self.result(cfg, times, spans, err, tol, ok, startup, pas.tasks(spans, len(times)))
        result.flops = pas.flops
        result.repeat_start_ns = timed.starts_ns
        result.worker_cpus = ex.worker_cpus
        if sampler:
            result.cpu_samples = samples
            result.on_cpu_ratio = timed.on_cpu_ratio(cfg.workers, computed)
        if not ex.measures_task_cpu:
            result.on_cpu_ratio = [float("nan")] * cfg.workers
        result.dask = ex.run_info()
        result.conditions = conditions.finished(samples)
        pas.finish(result, ex)
        if keep_arrays:
            result.arrays = pas.saved(got)
        return report(result, run_id, err, tol, emit, pas.what)

    def stop_now(self, ex: Executor) -> None:
        """Ctrl+C: stop workers at once; an executor that cannot be used again is dropped."""
        if ex.stop_now():
            self._executors = {k: v for k, v in self._executors.items() if v is not ex}

    def new_run(self) -> int:
        """The id of a run that starts now (its events carry it)."""
        self._runs += 1
        return self._runs

    def result(self, cfg, times, spans, err, tol, ok, startup, tasks) -> RunResult:
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
            flops=0,
            spans=spans,
            worker_busy_ms=[float(np.median(b)) for b in busy],
            pool_startup_ms=startup,
        )


def _ignore(event) -> None:
    pass


def _memory_shortfall(shapes: dict) -> str | None:
    """The run's arrays (float32), its float64 reference and error: do they fit under the
    process's limits (ulimit -v, cgroup memory.max, free memory)? One line if not."""
    from partui.profiles.system.memory_limits import shortfall

    if "out" not in shapes:
        return None
    out = int(np.prod(shapes["out"]))
    need = 4 * sum(int(np.prod(s)) for s in shapes.values()) + 3 * 8 * out
    return shortfall(need) if need > 64 * 2**20 else None  # small runs: not worth a look
