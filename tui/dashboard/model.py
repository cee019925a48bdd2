"""What the dashboard shows, kept apart from how it is drawn.

The model takes the engine's events and keeps bounded histories, so a
long live session uses constant memory and a redraw reads only what it shows.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from partui.kernels.model.layers import LAYER_NAMES, MAX_BATCH
from partui.kernels.plan.strategies import EXECUTORS, KERNELS, STRATEGIES
from partui.profiles.records.config import RunConfig
from partui.profiles.records.events import (
    CpuSample,
    RepeatDone,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
    SpanDone,
    repeat_progress,
)
from partui.profiles.records.limits import MAX_WORKERS
from partui.profiles.records.results import RunResult
from partui.profiles.store.baselines import BaselineBook

CPU_HISTORY = 600  # samples kept (over 30 s at 12.5 Hz while runs go, minutes when idle)
RUN_HISTORY = 1000  # runs kept: live mode makes tens a second; the book keeps the baselines
REPEAT_HISTORY = 200  # repeat times on the history chart
RUN_DETAIL = 20  # runs that keep their spans and CPU samples; older ones keep their figures
# (a live session's 1000 runs with spans held ~50 MB: the soak benchmark's growth)
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def _cycle(options, current, step: int):
    options = list(options)
    i = options.index(current) if current in options else 0
    return options[(i + step) % len(options)]


@dataclass
class Model:
    config: RunConfig
    max_workers: int
    runs: list[RunResult] = field(default_factory=list)  # the last RUN_HISTORY
    runs_dropped: int = 0  # older runs let go: runs[i] is run number runs_dropped + i + 1
    # runs that ended without a result (a lost worker, an error): (how many runs came
    # before it, its RunConfig or None, one-line message), shown in the table where they happened
    failures: list[tuple[int, RunConfig | None, str]] = field(default_factory=list)
    live_runs: set = field(default_factory=set)  # numbers of the runs live mode made (pooled rows)
    spans: list = field(default_factory=list)  # every span of the run going (warm-ups included)
    run_samples: list = field(default_factory=list)  # the CPU samples of the run going
    done_repeats: list = field(default_factory=list)  # timed repeats of the run going, finished
    repeat_windows: dict = field(default_factory=dict)  # their (start_ns, wall_ms)
    repeats_ended: int = 0  # repeats of the run going that ended, warm-ups included
    cpu: deque = field(default_factory=lambda: deque(maxlen=CPU_HISTORY))
    # (run number, ms, configuration key): the repeat times on the history chart
    repeats: deque = field(default_factory=lambda: deque(maxlen=REPEAT_HISTORY))
    running: RunConfig | None = None
    running_live: bool = False
    selected: int | None = None  # the run number on the timeline (None: the latest)
    repeat_choice: int | None = None  # its repeat on the timeline (None: the median one)
    version: int = 0  # bumped on every change: views redraw only when it moves
    read_only: bool = False
    source: str | None = None  # the snapshot file shown, when read-only
    book: BaselineBook | None = None  # the baseline book of this machine
    known_baselines: dict = field(default_factory=dict)  # a snapshot's recorded baselines
    _analysis: tuple | None = field(default=None, repr=False)
    # "now" on the spans' clock (CLOCK_MONOTONIC, shared with the engine process); fixed in
    # screenshots so a picture does not depend on when it was taken
    clock: Callable[[], int] = field(default=time.perf_counter_ns, repr=False)

    # -- settings -----------------------------------------------------------
    @property
    def not_applicable(self) -> str | None:
        return self.config.not_applicable_reason()

    def set(self, **changes) -> None:
        self.config = replace(self.config, **changes)
        self.version += 1

    def cycle(self, what: str, step: int = 1) -> None:
        options = {
            "strategy": STRATEGIES,
            "kernel": KERNELS,
            "executor": EXECUTORS,
            "layer": LAYER_NAMES,
            "batch": BATCHES,
        }[what]
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
                if self.running is not None:
                    self.spans.append(ev.span)
            elif isinstance(ev, CpuSample):
                self.cpu.append(ev)
                if self.running is not None:
                    self.run_samples.append(ev)
            elif isinstance(ev, RepeatDone):
                if self.running is not None:
                    self.repeats_ended += 1
                if ev.repeat >= 0 and self.running is not None:
                    self.done_repeats.append(ev.repeat)
                    self.repeat_windows[ev.repeat] = (ev.start_ns, ev.wall_ns / 1e6)
                    self.repeats.append((self.run_count + 1, ev.wall_ns / 1e6, self.running.key()))
            elif isinstance(ev, RunStarted):
                self.running = ev.config
                self.running_live = ev.live
                self.spans, self.run_samples, self.done_repeats = [], [], []
                self.repeat_windows = {}
                self.repeats_ended = 0
            elif isinstance(ev, RunFinished):
                self._add_run(self._with_streams(ev.result))
                self.running = None
            elif isinstance(ev, RunFailed):
                if ev.result is not None:  # it ran, and its answer is wrong: a FAIL row
                    self._add_run(self._with_streams(ev.result))
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

    def _with_streams(self, result: RunResult) -> RunResult:
        """The run's end comes without its spans and samples (they travel once): put back the
        ones streamed, so the screen, the snapshot and its trace hold the same spans."""
        if not result.spans:
            result.spans = [s for s in self.spans if s.repeat >= 0]
        if not result.cpu_samples:
            result.cpu_samples = list(self.run_samples)
        return result

    def _add_run(self, result: RunResult) -> None:
        self.runs.append(result)
        if self.running_live:
            self.live_runs.add(self.run_count)
        if len(self.runs) > RUN_DETAIL:
            old = self.runs[-RUN_DETAIL - 1]
            old.spans, old.cpu_samples = [], []
        if len(self.runs) > RUN_HISTORY:
            drop = len(self.runs) - RUN_HISTORY
            del self.runs[:drop]
            self.runs_dropped += drop
            self.live_runs = {n for n in self.live_runs if n > self.runs_dropped}

    def run_number(self, n: int) -> RunResult | None:
        """Run number n (1-based, as in the table), while it is kept."""
        i = n - self.runs_dropped - 1
        return self.runs[i] if 0 <= i < len(self.runs) else None

    def run_progress(self) -> str | None:
        """Where the run going stands ("repeat 2 of 5"); None when no run is going."""
        if self.running is None:
            return None
        return repeat_progress(self.repeats_ended, self.running.warmup, self.running.repeats)

    # -- the timeline's choice ---------------------------------------------------
    def select_run(self, n: int | None) -> None:
        """Show run n on the timeline (None: follow the latest); its median repeat first."""
        if n != self.selected:
            self.selected = n
            self.repeat_choice = None
            self.version += 1

    def step_repeat(self, step: int) -> None:
        view = self.timeline_view()
        if view is None or not view.repeats:
            return
        i = view.repeats.index(view.repeat) if view.repeat in view.repeats else 0
        self.repeat_choice = view.repeats[(i + step) % len(view.repeats)]
        self.version += 1

    def choose_repeat(self, which: str) -> None:
        """Show the fastest, slowest or median repeat of the run on the timeline."""
        from partui.tui.text.repeat_pick import named_index

        pick = self.repeat_pick()
        if pick is not None:
            self.repeat_choice = named_index(which, pick.times_ms)
            self.version += 1

    def repeat_pick(self):
        """The timed repeat the timeline shows of a finished run (a RepeatPick), None while
        the timeline shows the run going or no run: what replaying a snapshot steps through."""
        from partui.tui.text.repeat_pick import RepeatPick, median_index, own_repeats

        number = self.selected if self.run_number(self.selected or 0) else None
        if number is None:
            if self.running is not None and not self.running_live and self.done_repeats:
                return None
            number = self.run_count
        result = self.run_number(number)
        if result is None:
            return None
        times, starts = own_repeats(result)
        repeat = self.repeat_choice if self.repeat_choice in range(len(times)) else None
        repeat = median_index(times) if repeat is None else repeat
        if repeat is None:
            return None
        start = starts[repeat] if starts else None
        return RepeatPick(number, repeat, tuple(times), start)

    def timeline_view(self):
        """What the timeline shows: one repeat of the selected run, of the run going (a
        single run or a sweep: its latest finished repeat), or of the latest run."""
        from partui.tui.dashboard.charts.timeline import view_of_result, view_of_running

        if self.selected is not None:
            result = self.run_number(self.selected)
            if result is not None:
                return view_of_result(result, self.selected, self.repeat_choice)
        if self.running is not None and not self.running_live and self.done_repeats:
            return view_of_running(
                self.running,
                self.run_count + 1,
                self.spans,
                self.done_repeats,
                self.repeat_choice,
                self.repeat_windows,
            )
        if self.runs:
            return view_of_result(self.runs[-1], self.run_count, self.repeat_choice)
        return None

    # -- derived views ------------------------------------------------------
    def analysis(self):
        """Every run against its 1-worker twin and the honest baseline.

        Cached per run count: spans and CPU samples move `version` many times a second but
        change nothing here (the book only learns from finished runs, which add to the count).

        The honest baseline for a layer, kernel and batch is the best single-worker median
        of any strategy: this session's runs, or the machine's book of earlier ones.
        """
        from partui.profiles.store.analysis import analyze, fastest

        if self._analysis is None or self._analysis[0] != self.run_count:
            book = self.book.known(self.runs) if self.book is not None else {}
            known = fastest(self.known_baselines, book)
            source = "this snapshot" if self.read_only else "this session"
            self._analysis = (self.run_count, analyze(self.runs, known, source))
        return self._analysis[1]

    def table_entries(self) -> list[tuple[str, int, int, object]]:
        """The runs table, oldest first: (row key, run number, runs in the row, what it shows).

        Single runs and sweeps have a row each; the runs live mode made are pooled, one row
        per configuration at the place of its latest run (every repeat of every run counts).
        A failure without a result is (key, position, 0, (config, error)).
        """
        from partui.profiles.records.stats import run_stats
        from partui.profiles.store.analysis import Row, drift_of, pool
        from partui.profiles.store.baselines import key_of

        analysis = self.analysis()
        first = self.runs_dropped
        groups: dict[tuple, list[int]] = {}
        for i, row in enumerate(analysis.rows):
            if first + i + 1 in self.live_runs:
                groups.setdefault(row.result.config.key(), []).append(i)
        pooled = {k: pool([analysis.rows[i].result for i in idx]) for k, idx in groups.items()}
        entries: list[tuple[str, int, int, object]] = []
        for i, row in enumerate(analysis.rows):
            number = first + i + 1
            if number not in self.live_runs:
                entries.append((f"r{number}", number, 1, row))
                continue
            key = row.result.config.key()
            idx = groups[key]
            if i != idx[-1]:
                continue  # shown once, where its latest run is
            result = pooled[key]
            twin_key = (*result.config.series_key(), 1)
            twin = pooled.get(twin_key) or next(
                (r.result for r in reversed(analysis.rows) if r.result.config.key() == twin_key),
                None,
            )
            base = analysis.baselines.get(key_of(result.config))
            drift = drift_of(
                [analysis.rows[j].result for j in idx],
                [analysis.rows[j].result for j in groups.get(twin_key, [])],
            )
            stats = run_stats(result, twin, base.median_ms if base else None, drift=drift)
            entries.append((f"live{number}", number, len(idx), Row(result, stats, base)))
        for n, (position, config, error) in enumerate(self.failures):
            entries.append((f"f{n}", position, 0, (config, error)))
        entries.sort(key=lambda e: e[1] + (0.5 if e[2] == 0 else 0))
        return entries

    def baseline_for(self, cfg: RunConfig):
        from partui.profiles.store.baselines import key_of

        return self.analysis().baselines.get(key_of(cfg))

    def series_for(self, cfg: RunConfig):
        """The worker-count series (medians, Amdahl fit) of cfg's
        layer/strategy/kernel/executor/batch."""
        key = cfg.series_key()
        for series in self.analysis().series:
            if series.key == key:
                return series
        return None
