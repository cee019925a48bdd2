"""The CPU chart: per-core use and other programs over the last 30 s."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from partui.tui.dashboard.charts.base import Chart, downsample
from partui.tui.dashboard.colors import CORES, OTHERS
from partui.tui.dashboard.model import Model
from partui.tui.text.repeat_pick import samples_over

CPU_WINDOW_S = 30.0
GAP_S = 1.5  # no sample covers a longer stretch: the line breaks there


@dataclass
class CpuSeries:
    """Lines of the CPU chart: per core (0-100) and other programs (% of all cores)."""

    cores: list[list[list[tuple[float, float]]]]  # per core: segments of (seconds ago, %)
    others: list[list[tuple[float, float]]]  # segments, % of all cores


def cpu_segments(samples, now_ns: int, window_s: float = CPU_WINDOW_S) -> CpuSeries:
    """The last `window_s` seconds up to `now_ns`, split where no sample covers the time.

    A sample covers its own window (`window_ns`, or the time since the previous sample in
    old snapshots); a stretch longer than GAP_S with no sample starts a new segment, as
    does a value the sampler could not read (NaN): lines are never joined across them.
    """
    recent = [s for s in samples if (now_ns - s.t_ns) / 1e9 <= window_s and s.t_ns <= now_ns]
    ncores = max((len(s.per_core) for s in recent), default=0)
    cores: list[list[list]] = [[] for _ in range(ncores)]
    others: list[list] = []
    prev_t = None
    for s in recent:
        covered = s.window_ns / 1e9 if s.window_ns else None
        gap = (
            prev_t is None
            or (s.t_ns - prev_t) / 1e9 > GAP_S
            or (covered is not None and covered > GAP_S)
        )
        x = (s.t_ns - now_ns) / 1e9
        for c in range(ncores):
            v = s.per_core[c] if c < len(s.per_core) else float("nan")
            _add(cores[c], x, v, gap)
        other = (
            s.others_cpu / len(s.per_core)
            if s.others_cpu is not None and s.per_core
            else float("nan")
        )
        _add(others, x, min(100.0, other), gap)
        prev_t = s.t_ns
    return CpuSeries(cores, others)


@dataclass
class RepeatCpu:
    """The CPU lines beside one timed repeat of a saved run. The sampler measures the whole
    run in windows of tens of milliseconds, often longer than a repeat: the lines are the
    run's, x in ms from the repeat's start, and `covering` says how many samples overlap
    the repeat (their windows reach past it)."""

    series: CpuSeries
    start_ms: float  # the run's samples span start_ms .. end_ms around the repeat
    end_ms: float
    covering: int
    sample_ms: float  # the median sample window (0: not recorded)


def repeat_cpu(samples, start_ns: int, wall_ms: float) -> RepeatCpu | None:
    """The run's samples around the repeat that starts at `start_ns`; None without samples."""
    if not samples:
        return None
    last = samples[-1].t_ns
    series = cpu_segments(samples, last, window_s=float("inf"))
    shift = (last - start_ns) / 1e6  # cpu_segments' x: seconds before the last sample

    def moved(segments):
        return [[(x * 1e3 + shift, v) for x, v in seg] for seg in segments]

    series = CpuSeries([moved(core) for core in series.cores], moved(series.others))
    windows = sorted(s.window_ns for s in samples if s.window_ns)
    covering = len(samples_over(samples, start_ns, wall_ms))
    first = samples[0].t_ns - (samples[0].window_ns or 0)
    return RepeatCpu(
        series,
        (first - start_ns) / 1e6,
        (last - start_ns) / 1e6,
        covering,
        windows[len(windows) // 2] / 1e6 if windows else 0.0,
    )


def span_ticks(lo: float, hi: float, most: int) -> list[float]:
    """Round ticks within [lo, hi], 0 among them when it is inside."""
    from partui.tui.dashboard.charts.timeline import nice_ticks

    ticks = nice_ticks(hi - lo, most)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else hi - lo or 1.0
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 9) for i in range(int((hi - first) / step + 1e-9) + 1)]


def _add(segments: list, x: float, v: float, gap: bool) -> None:
    if v != v:  # unread: the line breaks here
        if segments and segments[-1]:
            segments.append([])
        return
    if gap or not segments:
        if not segments or segments[-1]:
            segments.append([])
    segments[-1].append((x, v))


class CpuChart(Chart):
    """Per-core CPU use over the last 30 s up to now, idle included (htop's view)."""

    chart_title = "CPU % per core · last 30 s"
    short_title = "CPU % · 30 s"
    empty_hint = "waiting for the first CPU samples"
    phase = 0.25

    def version_key(self, model: Model):
        if model.read_only:  # a saved run: its CPU beside the repeat on screen
            return (len(model.cpu), model.repeat_pick())
        last = model.cpu[-1].t_ns if model.cpu else None
        # the axis ends at now: redraw as time passes even with no new sample
        return (len(model.cpu), last, None if model.read_only else int(time.monotonic()))

    def draw(self, plt, model: Model) -> None:
        pick = model.repeat_pick() if model.read_only else None
        cls = type(self)
        self.chart_title, self.short_title = (
            (f"CPU % per core · run {pick.run}, whole run", f"CPU % · run {pick.run}")
            if pick is not None
            else (cls.chart_title, cls.short_title)
        )
        self.on_resize()
        if pick is not None:
            self.draw_repeat(plt, model, pick)
            return
        samples = list(model.cpu)
        if not samples:
            self.hint(self.empty_hint)
            return
        now = samples[-1].t_ns if model.read_only else model.clock()
        series = cpu_segments(samples, now)
        if not any(seg for core in series.cores for seg in core):
            self.hint("no CPU sample in the last 30 s")
            return
        self._plot_series(plt, series)
        plt.ylim(0, 100)
        plt.xlim(-CPU_WINDOW_S, 0)
        plt.xticks([-30, -20, -10, 0], ["-30s", "-20s", "-10s", "now"])
        plt.yticks([0, 50, 100])

    def draw_repeat(self, plt, model: Model, pick) -> None:
        """A saved run: its own samples, the repeat on screen marked; never another run's."""
        result = model.run_number(pick.run)
        samples = list(result.cpu_samples) if result is not None else []
        if pick.start_ns is None:
            self.hint(f"run {pick.run} kept no repeat start times: no CPU per repeat")
            return
        around = repeat_cpu(samples, pick.start_ns, pick.wall_ms)
        if around is None:
            self.hint(f"run {pick.run} kept no CPU samples")
            return
        self._plot_series(plt, around.series)
        plt.vline(0, "white")
        if pick.wall_ms >= (around.end_ms - around.start_ms) / 50:  # else one column
            plt.vline(pick.wall_ms, "white")
        lo, hi = min(around.start_ms, 0.0), max(around.end_ms, pick.wall_ms)
        plt.ylim(0, 100)
        plt.xlim(lo, hi)
        plt.yticks([0, 50, 100])
        plt.xticks(span_ticks(lo, hi, max(3, (self.size.width - 8) // 6)))
        n, covering = pick.repeat + 1, around.covering
        every = f"{around.sample_ms:.0f} ms" if around.sample_ms else "?"
        words = [
            f"ms from repeat {n}'s start (│) · {covering} samples of {every} cover it",
            f"ms from repeat {n} (│) · {covering} samples of {every} on it",
            f"ms · │ repeat {n} · {covering} samples on it",
            f"ms · │ repeat {n}",
        ]
        room = self.size.width - 6
        plt.xlabel(next((w for w in words if len(w) <= room), words[-1]))

    def _plot_series(self, plt, series: CpuSeries) -> None:
        lines = min(len(series.cores), len(CORES)) + 1
        legend = self.size.height >= lines + 5  # plotext's legend needs the room
        for c, segments in enumerate(series.cores[: len(CORES)]):
            _plot_segments(plt, segments, f"cpu{c}" if legend else None, CORES[c])
        _plot_segments(plt, series.others, "others" if legend else None, OTHERS)


def _plot_segments(plt, segments, label, color) -> None:
    first = True
    for seg in segments:
        if not seg:
            continue
        xs, ys = downsample([p[0] for p in seg], [p[1] for p in seg])
        if len(xs) == 1:
            plt.scatter(xs, ys, color=color, marker="•", label=label if first else None)
        else:
            plt.plot(xs, ys, color=color, label=label if first else None)
        first = False
