"""What the dashboard shows, kept apart from how it is drawn.

The model takes the engine's events and keeps bounded histories, so a
long live session uses constant memory and a redraw reads only what it shows.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace

from partui.kernels.layers import LAYER_NAMES, MAX_BATCH, get_layer
from partui.kernels.strategies import EXECUTORS, KERNELS, STRATEGIES, not_applicable_reason
from partui.profiles.engine import MAX_WORKERS, RunConfig, RunResult
from partui.profiles.events import (CpuSample, RepeatDone, RunCancelled, RunFailed, RunFinished,
                                    RunStarted, SpanDone)

CPU_HISTORY = 300  # samples kept (30 s at 10 Hz)
SPAN_HISTORY = 4000  # spans of the run on the timeline
REPEAT_HISTORY = 200  # repeat times on the history chart
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def _cycle(options, current, step: int):
    options = list(options)
    i = options.index(current) if current in options else 0
    return options[(i + step) % len(options)]


def reason_for(cfg: RunConfig) -> str | None:
    """Why `cfg` is not applicable, or None when it is."""
    return not_applicable_reason(get_layer(cfg.layer), cfg.strategy, cfg.kernel, cfg.executor,
                                 cfg.workers)


@dataclass
class Model:
    config: RunConfig
    max_workers: int
    runs: list[RunResult] = field(default_factory=list)
    failures: list[tuple[int, str]] = field(default_factory=list)  # (run id, message)
    spans: deque = field(default_factory=lambda: deque(maxlen=SPAN_HISTORY))
    cpu: deque = field(default_factory=lambda: deque(maxlen=CPU_HISTORY))
    repeats: deque = field(default_factory=lambda: deque(maxlen=REPEAT_HISTORY))
    running: RunConfig | None = None
    run_id: int = 0
    run_start_ns: int | None = None
    pool_startup_ms: float = 0.0
    version: int = 0  # bumped on every change: views redraw only when it moves
    read_only: bool = False
    source: str | None = None  # the snapshot file shown, when read-only

    # -- settings -----------------------------------------------------------
    @property
    def not_applicable(self) -> str | None:
        return reason_for(self.config)

    def set(self, **changes) -> None:
        self.config = replace(self.config, **changes)
        self.version += 1

    def cycle(self, what: str, step: int = 1) -> None:
        options = {"strategy": STRATEGIES, "kernel": KERNELS, "executor": EXECUTORS,
                   "layer": LAYER_NAMES, "batch": BATCHES}[what]
        self.set(**{what: _cycle(options, getattr(self.config, what), step)})

    def step_workers(self, step: int) -> None:
        self.set(workers=max(1, min(MAX_WORKERS, self.config.workers + step)))

    def step_batch(self, step: int) -> None:
        b = self.config.batch
        b = b * 2 if step > 0 else b // 2
        self.set(batch=max(1, min(MAX_BATCH, b)))

    # -- events -------------------------------------------------------------
    def apply(self, events) -> bool:
        """Fold engine events in; returns whether anything changed."""
        changed = False
        for ev in events:
            changed = True
            if isinstance(ev, SpanDone):
                self.spans.append(ev.span)
            elif isinstance(ev, CpuSample):
                self.cpu.append(ev)
            elif isinstance(ev, RepeatDone):
                if self.run_start_ns is None:
                    self.run_start_ns = ev.start_ns
                if ev.repeat >= 0:
                    self.repeats.append((ev.run, ev.wall_ns / 1e6))
            elif isinstance(ev, RunStarted):
                self.run_id = ev.run
                self.running = RunConfig(**ev.config)
                self.spans.clear()
                self.run_start_ns = None
                self.pool_startup_ms = ev.pool_startup_ms
            elif isinstance(ev, RunFinished):
                self.runs.append(ev.result)
                self.running = None
            elif isinstance(ev, RunFailed):
                if ev.result is not None:
                    self.runs.append(ev.result)
                self.failures.append((ev.run, ev.error))
                self.running = None
            elif isinstance(ev, RunCancelled):
                self.running = None
        if changed:
            self.version += 1
        return changed

    # -- derived views ------------------------------------------------------
    def baseline_ms(self, layer: str, batch: int) -> tuple[float, str] | None:
        """The honest baseline: the best single-worker median of any strategy for layer and batch."""
        best = None
        for r in self.runs:
            c = r.config
            if c["layer"] == layer and c["batch"] == batch and c["workers"] == 1 and r.ok:
                if best is None or r.median_ms < best[0]:
                    best = (r.median_ms, f"{c['strategy']}/{c['kernel']}/{c['executor']}")
        return best

    def speedup_points(self, cfg: RunConfig) -> dict[int, RunResult]:
        """The latest verified run per worker count for cfg's layer, strategy, kernel, executor, batch."""
        points: dict[int, RunResult] = {}
        for r in self.runs:
            c = r.config
            if (c["layer"], c["strategy"], c["kernel"], c["executor"], c["batch"]) == \
                    (cfg.layer, cfg.strategy, cfg.kernel, cfg.executor, cfg.batch) and r.ok:
                points[c["workers"]] = r
        return dict(sorted(points.items()))
