"""What the engine reports while it works. Plain dataclasses: easy to queue, pickle and save."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Span:
    """One task, stamped by the worker that ran it (perf_counter_ns, CLOCK_MONOTONIC)."""

    worker: int  # worker index 0..workers-1
    tid: int  # native thread id, or pid for process workers
    start_ns: int
    end_ns: int
    units: int  # FLOPs of the task
    task: int = 0
    phase: int = 0
    repeat: int = 0  # -1 .. -W for warm-ups
    run: int = 0
    # ns from the caller's "go" to this task's start, for a worker's first task of a phase
    # (the `threads` executor's wake-up latency); -1: not recorded
    wake_ns: int = -1

    @classmethod
    def of_task(cls, task, worker, tid, start_ns, end_ns, run, repeat, wake_ns=-1) -> Span:
        """The span of `task` (a plan's Task: its FLOPs, index and phase) as stamped."""
        return cls(
            worker=worker,
            tid=tid,
            start_ns=start_ns,
            end_ns=end_ns,
            units=task.units,
            task=task.index,
            phase=task.phase,
            repeat=repeat,
            run=run,
            wake_ns=wake_ns,
        )

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunStarted:
    run: int
    config: Any  # the RunConfig: typed until a snapshot writes it
    pool_startup_ms: float  # 0 when the pool was already warm
    live: bool = False  # made by live mode (run again and again), not submitted
    conditions: Any = None  # the machine's Conditions read just before (profiles.system)


@dataclass(frozen=True)
class SpanDone:
    span: Span


@dataclass(frozen=True)
class RepeatDone:
    run: int
    repeat: int  # negative for warm-ups
    wall_ns: int
    start_ns: int = 0


def repeat_progress(done: int, warmup: int, repeats: int) -> str:
    """Where a run stands after `done` RepeatDone events (warm-ups first): the repeat under
    way ("warm-up 1 of 2", "repeat 3 of 5"), or the check that follows the last one."""
    if done < warmup:
        return f"warm-up {done + 1} of {warmup}"
    if done < warmup + repeats:
        return f"repeat {done - warmup + 1} of {repeats}"
    return "checking the result"


@dataclass(frozen=True)
class RunFinished:
    run: int
    result: Any  # RunResult


@dataclass(frozen=True)
class RunFailed:
    run: int  # 0 when the run never started (a bad configuration)
    error: str  # one line
    result: Any = None
    config: Any = None  # the RunConfig, when there was one


@dataclass(frozen=True)
class RunCancelled:
    run: int  # 0 when the run was dropped from the queue before it started
    config: Any = None  # the RunConfig


@dataclass(frozen=True)
class Compiling:
    """The engine compiles a layer's native kernels ahead of need (the first runs after an
    install): sent as it starts one layer (done=False) and as it finishes it."""

    layer: str
    left: int  # layers still to compile, this one included
    done: bool = False
    seconds: float = 0.0


@dataclass(frozen=True)
class CpuSample:
    """What the CPU did since the previous sample (profiles.sampler)."""

    t_ns: int  # perf_counter_ns when taken: the same clock as the spans
    per_core: list[float]  # percent 0-100 per logical CPU
    workers: dict[int, float]  # worker index -> CPU seconds used so far (thread or process)
    engine_cpu: float  # % of one core used by the engine process itself, sampler included
    sampler_cost_us: float  # CPU time this sample cost the sampler
    window_ns: int = 0  # the stretch this sample covers, ending at t_ns (0: not recorded)
    partui_cpu: float | None = None  # % of one core: engine, its worker processes, dashboard
    others_cpu: float | None = None  # % of one core: every other program on the machine

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["workers"] = {str(k): v for k, v in self.workers.items()}  # JSON keys are strings
        d["per_core"] = [None if v != v else v for v in self.per_core]  # JSON has no NaN
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CpuSample:
        def opt(v):
            return None if v is None else float(v)

        return cls(
            int(d["t_ns"]),
            [float("nan") if v is None else float(v) for v in d["per_core"]],
            {int(k): float(v) for k, v in d["workers"].items()},
            float(d["engine_cpu"]),
            float(d["sampler_cost_us"]),
            int(d.get("window_ns") or 0),
            opt(d.get("partui_cpu")),
            opt(d.get("others_cpu")),
        )


@dataclass
class EventLog:
    """A consumer that keeps every event (tests, the CLI)."""

    events: list = field(default_factory=list)

    def __call__(self, event) -> None:
        self.events.append(event)

    def of(self, kind) -> list:
        return [e for e in self.events if isinstance(e, kind)]


@dataclass
class StepDone:
    """Progress: `step` steps of the run done (1-based), `loss` the latest step's mean loss."""

    step: int
    epoch: int
    steps_per_epoch: int
    elapsed_s: float
    loss: float
    images: int = 0  # images seen by the run so far (the x axis of images, not time)
