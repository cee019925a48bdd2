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

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunStarted:
    run: int
    config: dict[str, Any]
    pool_startup_ms: float  # 0 when the pool was already warm


@dataclass(frozen=True)
class SpanDone:
    span: Span


@dataclass(frozen=True)
class RepeatDone:
    run: int
    repeat: int  # negative for warm-ups
    wall_ns: int
    start_ns: int = 0


@dataclass(frozen=True)
class RunFinished:
    run: int
    result: Any  # RunResult


@dataclass(frozen=True)
class RunFailed:
    run: int
    error: str
    result: Any = None


@dataclass(frozen=True)
class RunCancelled:
    run: int


@dataclass
class EventLog:
    """A consumer that keeps every event (tests, the CLI)."""
    events: list = field(default_factory=list)

    def __call__(self, event) -> None:
        self.events.append(event)

    def of(self, kind) -> list:
        return [e for e in self.events if isinstance(e, kind)]
