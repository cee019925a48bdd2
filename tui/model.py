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
RUN_HISTORY = 1000  # runs kept: live mode makes tens a second; the book keeps the baselines
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
    runs: list[RunResult] = field(default_factory=list)  # the last RUN_HISTORY
    runs_dropped: int = 0  # older runs let go: runs[i] is run number runs_dropped + i + 1
    # runs that ended without a result (a lost worker, an error): (how many runs came
    # before it, config dict or None, one-line message), shown in the table where they happened
    failures: list[tuple[int, dict | None, str]] = field(default_factory=list)
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
    book: object | None = None  # profiles.baselines.BaselineBook of this machine
    known_baselines: dict = field(default_factory=dict)  # a snapshot's recorded baselines
    _analysis: tuple | None = field(default=None, repr=False)

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
                self._add_run(ev.result)
                self.running = None
            elif isinstance(ev, RunFailed):
                if ev.result is not None:  # it ran, and its answer is wrong: a FAIL row
                    self._add_run(ev.result)
                else:
                    self.failures.append((self.run_count, ev.config, ev.error))
                    del self.failures[:-RUN_HISTORY]
                self.running = None
            elif isinstance(ev, RunCancelled):
                self.running = None
        if changed:
            self.version += 1
        return changed

    @property
    def run_count(self) -> int:
        return self.runs_dropped + len(self.runs)

    def _add_run(self, result: RunResult) -> None:
        self.runs.append(result)
        if len(self.runs) > RUN_HISTORY:
            drop = len(self.runs) - RUN_HISTORY
            del self.runs[:drop]
            self.runs_dropped += drop

    # -- derived views ------------------------------------------------------
    def analysis(self):
        """Every run against its 1-worker twin and the honest baseline.

        Cached per run count: spans and CPU samples move `version` many times a second but
        change nothing here (the book only learns from finished runs, which add to the count).

        The honest baseline for a layer, kernel and batch is the best single-worker median
        of any strategy: this session's runs, or the machine's book of earlier ones.
        """
        from partui.profiles.analysis import analyze
        if self._analysis is None or self._analysis[0] != self.run_count:
            known = dict(self.known_baselines)
            if self.book is not None:
                for k, b in self.book.known(self.runs).items():
                    if k not in known or b.median_ms < known[k].median_ms:
                        known[k] = b
            source = "this snapshot" if self.read_only else "this session"
            self._analysis = (self.run_count, analyze(self.runs, known, source))
        return self._analysis[1]

    def baseline_for(self, cfg: RunConfig):
        from partui.profiles.baselines import key_of
        return self.analysis().baselines.get(key_of(cfg.to_dict()))

    def series_for(self, cfg: RunConfig):
        """The worker-count series (medians, Amdahl fit) of cfg's layer/strategy/kernel/executor/batch."""
        from partui.profiles.analysis import series_key
        key = series_key(cfg.to_dict())
        for series in self.analysis().series:
            if series.key == key:
                return series
        return None
