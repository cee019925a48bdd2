"""The profile tab's charts: worker timeline, CPU monitor, speedup, run-time history.

A plotext frame costs tens of milliseconds of CPU, so each chart redraws on its own
timer (at most once a second, the four out of step) and only when what it shows moved;
every series is cut to about a hundred points. A chart that fails to draw says so on one
line in its own pane; the dashboard goes on. A chart with nothing to show yet says what
would fill it, in the theme's colours, instead of drawing made-up lines.

The data each chart draws comes from small functions (`cpu_segments`, `speedup_points`,
`history_segments`) that tests check against hand-built samples and runs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from rich.text import Text
from textual.widget import Widget
from textual_plotext import PlotextPlot

from partui.tui.dashboard.charts.timeline import timeline_lines
from partui.tui.dashboard.colors import CORES, OTHERS, series_color
from partui.tui.dashboard.model import Model
from partui.tui.text.table import short_ms

MAX_POINTS = 100
CPU_WINDOW_S = 30.0
GAP_S = 1.5  # no sample covers a longer stretch: the line breaks there
CHART_INTERVAL_S = 1.0  # a chart redraws at most this often
# The charts on screen together spend at most COST_SHARE of one core: a chart waits (its
# frame's measured cost: building, rendering to text and to the screen's lines) x (charts on
# screen) / COST_SHARE between frames. A key that arrives during a frame waits for it, and
# a live run on every core makes each frame slower: the charts slow down, not the keys.
# They also wait KEY_QUIET_S after a key press, so the frame that shows the key holds none.
COST_SHARE = 0.05
KEY_QUIET_S = 0.35


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:80]}" if text else type(exc).__name__


class Redraws:
    """What every chart shares: its own throttle, a version key, errors kept in the pane."""

    chart_title = ""
    short_title = ""  # for a narrow pane: a title is never cut
    empty_hint = ""  # shown until the chart has something measured to draw
    phase = 0.0  # seconds after mount of the first redraw: the charts take turns

    def _init_chart(self) -> None:
        self.border_title = self.chart_title
        self._drawn_version = None
        self.draws = 0  # frames drawn, for the self-cost figures
        self.drawn_at = 0.0  # time.monotonic() of the last frame
        self.message: str | None = self.empty_hint or None  # shown instead of a figure
        self.failed: str | None = None  # the last drawing error, one line
        self.cost_s = 0.0  # what a frame of this chart costs: building it and rendering it
        self._build_s = 0.0  # the building part of the last frame (draw_model)
        self._render_s = 0.0  # the rendering part of the last frame so far

    def on_resize(self) -> None:
        room = self.size.width - 4  # the border title keeps a corner and a space each side
        fits = len(self.chart_title) <= room or not self.short_title
        self.border_title = self.chart_title if fits else self.short_title

    def start_timer(self) -> None:
        """Redraw from the app's shown model at most every CHART_INTERVAL_S (live app only)."""

        def begin():
            self.set_interval(CHART_INTERVAL_S, self.tick)

        self.set_timer(self.phase + 0.05, begin)

    def tick(self) -> None:
        if not self.is_on_screen:
            return
        now = time.monotonic()
        if now - getattr(self.app, "key_at", 0.0) < KEY_QUIET_S:
            return
        if now - self.drawn_at < self.frame_wait_s():
            return
        self.update_from(self.app.shown)

    def frame_wait_s(self) -> float:
        """The least time between two frames of this chart: its share of the charts' budget."""
        try:
            on_screen = sum(1 for chart in self.app.charts() if chart.is_on_screen)
        except Exception:  # noqa: BLE001 - an app without the dashboard's charts
            on_screen = 1
        return self.cost_s * max(1, on_screen) / COST_SHARE

    def render_lines(self, crop):
        # the whole frame's cost: render() and Textual's conversion to the screen's lines,
        # which may come in several calls (one per changed stretch of the screen)
        t0 = time.perf_counter()
        lines = super().render_lines(crop)
        self._render_s += time.perf_counter() - t0
        return lines

    def _note_cost(self, seconds: float) -> None:
        self.cost_s = 0.7 * self.cost_s + 0.3 * seconds if self.cost_s else seconds

    def update_from(self, model: Model, force: bool = False) -> bool:
        try:
            key = (id(model), self.version_key(model))
        except Exception as exc:  # noqa: BLE001 - a chart's bug shows in its pane
            return self._fail(exc)
        if key == self._drawn_version and not force:
            return False
        self._drawn_version = key
        if self._build_s or self._render_s:  # the last frame, now rendered in full
            self._note_cost(self._build_s + self._render_s)
            self._render_s = 0.0
        try:
            self.message = None
            t0 = time.perf_counter()
            self.draw_model(model)
            self._build_s = time.perf_counter() - t0
            self.failed = None
        except Exception as exc:  # noqa: BLE001
            return self._fail(exc)
        self.draws += 1
        self.drawn_at = time.monotonic()
        self.refresh()
        return True

    def _fail(self, exc: BaseException) -> bool:
        self.failed = f"could not draw this chart: {one_line(exc)}"
        self.drawn_at = time.monotonic()
        self.refresh()
        return True

    def message_text(self, text: str, error: bool = False) -> Text:
        try:
            theme = self.app.current_theme
            color = (theme.error if error else theme.foreground) or ""
        except Exception:  # noqa: BLE001 - no app yet
            color = ""
        out = Text(text, style=f"{color} italic" if color else "italic", justify="center")
        return out

    def version_key(self, model: Model):
        return model.version

    def draw_model(self, model: Model) -> None:
        raise NotImplementedError


class Chart(Redraws, PlotextPlot):
    """A plotext chart that redraws only when its model has changed."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._init_chart()

    def draw_model(self, model: Model) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        self.draw(plt, model)

    def hint(self, text: str) -> None:
        """Nothing measured to draw: say what would fill the chart, instead of a figure."""
        self.message = text

    def render(self):
        if self.failed:
            return self.message_text(self.failed, error=True)
        if self.message:
            return self.message_text(self.message)
        try:
            return super().render()
        except Exception as exc:  # noqa: BLE001 - plotext failed to lay the figure out
            self.failed = f"could not draw this chart: {one_line(exc)}"
            return self.message_text(self.failed, error=True)

    def draw(self, plt, model: Model) -> None:
        raise NotImplementedError


def downsample(xs: list, ys: list, limit: int = MAX_POINTS) -> tuple[list, list]:
    if len(xs) <= limit:
        return xs, ys
    step = len(xs) / limit
    idx = [int(i * step) for i in range(limit)]
    return [xs[i] for i in idx], [ys[i] for i in idx]


# ---- timeline -----------------------------------------------------------------------


class TimelineChart(Redraws, Widget):
    """One repeat of the current (or selected) run: a lane per worker, a box per task."""

    chart_title = "worker timeline · one repeat"
    short_title = "timeline"
    phase = 0.0
    DEFAULT_CSS = "TimelineChart { border: round $primary-darken-2; }"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._init_chart()
        self.view = None
        self.waiting: str | None = None
        self.going: str | None = None  # the line over the lanes while a run is going

    def version_key(self, model: Model):
        view = model.timeline_view()
        if view is None:
            return _waiting_text(model)
        return (
            view.run,
            view.repeat,
            len(view.repeats),
            view.running,
            sum(len(lane.spans) for lane in view.lanes),
            _going_text(model, view.run),
        )

    def draw_model(self, model: Model) -> None:
        self.view = model.timeline_view()
        self.waiting = _waiting_text(model) if self.view is None else None
        self.going = None if self.view is None else _going_text(model, self.view.run)

    def render(self):
        if self.failed:
            return self.message_text(self.failed, error=True)
        try:
            size = self.content_region.size if self.is_mounted else self.size
            if self.view is not None and self.going:
                # the longest wording that fits: the lanes' own head names the run they show
                head = self.going.split(" · ")[0]
                words = [self.going, head, head.split(" ", 2)[2]]
                fit = next((w for w in words if len(w) <= size.width), words[-1])
                going = Text(fit, "bold", no_wrap=True, overflow="ellipsis")
                going.truncate(size.width, overflow="ellipsis")
                lanes = timeline_lines(self.view, size.width, max(1, size.height - 1))
                return Text("\n").join([going, lanes])
            text = timeline_lines(self.view, size.width, size.height)
            if self.view is None:
                return self.message_text(self.waiting or text.plain)
            return text
        except Exception as exc:  # noqa: BLE001
            self.failed = f"could not draw this chart: {one_line(exc)}"
            return self.message_text(self.failed, error=True)


def _waiting_text(model: Model) -> str | None:
    """A run has started and no repeat of it has finished (its warm-up, or a long first
    repeat): say so rather than "no run yet"."""
    if model.running is None:
        return None
    return (
        f"run {model.run_count + 1} ({model.running.label()}) running: "
        f"{model.run_progress()}; the timeline shows its first timed repeat when it ends"
    )


def _going_text(model: Model, shown: int) -> str | None:
    """While a run goes, what it is doing, over the lanes: they may still be an earlier
    run's (the new one has not finished a timed repeat yet, or a run is picked)."""
    if model.running is None:
        return None
    going = model.run_count + 1
    text = f"run {going} running: {model.run_progress()}"
    return text if shown == going else f"{text} · below: run {shown}"


# ---- CPU ---------------------------------------------------------------------------


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
        last = model.cpu[-1].t_ns if model.cpu else None
        # the axis ends at now: redraw as time passes even with no new sample
        return (len(model.cpu), last, None if model.read_only else int(time.monotonic()))

    def draw(self, plt, model: Model) -> None:
        samples = list(model.cpu)
        if not samples:
            self.hint(self.empty_hint)
            return
        now = samples[-1].t_ns if model.read_only else model.clock()
        series = cpu_segments(samples, now)
        if not any(seg for core in series.cores for seg in core):
            self.hint("no CPU sample in the last 30 s")
            return
        lines = min(len(series.cores), len(CORES)) + 1
        legend = self.size.height >= lines + 5  # plotext's legend needs the room
        for c, segments in enumerate(series.cores[: len(CORES)]):
            _plot_segments(plt, segments, f"cpu{c}" if legend else None, CORES[c])
        _plot_segments(plt, series.others, "others" if legend else None, OTHERS)
        plt.ylim(0, 100)
        plt.xlim(-CPU_WINDOW_S, 0)
        plt.xticks([-30, -20, -10, 0], ["-30s", "-20s", "-10s", "now"])
        plt.yticks([0, 50, 100])


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


# ---- speedup -----------------------------------------------------------------------


@dataclass
class SpeedupPoint:
    workers: int
    speedup: float  # baseline / pooled median
    low: float  # baseline / slowest repeat
    high: float  # baseline / fastest repeat
    runs: int


def speedup_points(runs, series_key: tuple, baseline_ms: float) -> list[SpeedupPoint]:
    """Measured points of one configuration series: every verified run pooled per worker count."""
    from partui.profiles.store.analysis import pool

    groups: dict[int, list] = {}
    for r in runs:
        if r.ok and r.config.series_key() == series_key:
            groups.setdefault(r.config.workers, []).append(r)
    out = []
    for w in sorted(groups):
        p = pool(groups[w])
        if p.median_ms > 0 and p.min_ms > 0:
            out.append(
                SpeedupPoint(
                    w,
                    baseline_ms / p.median_ms,
                    baseline_ms / p.max_ms,
                    baseline_ms / p.min_ms,
                    len(groups[w]),
                )
            )
    return out


def worker_ticks(ws: list[int], most: int = 8) -> list[int]:
    lo, hi = min(ws), max(ws)
    step = max(1, math.ceil((hi - lo + 1) / most))
    return list(range(lo, hi + 1, step))


class SpeedupChart(Chart):
    """Measured speedup against the honest baseline, with min-max bars and the ideal line."""

    chart_title = "speedup vs best 1-worker time"
    short_title = "speedup"
    empty_hint = "no 1-worker baseline yet: w runs 1, 2 .. workers and draws the speedup"
    phase = 0.5

    def version_key(self, model: Model):
        return (model.run_count, model.config)

    def draw(self, plt, model: Model) -> None:
        from partui.profiles.records.stats import amdahl_fit

        cfg = model.config
        base = model.baseline_for(cfg)
        if base is None:
            self.hint(self.empty_hint)
            return
        points = speedup_points(model.runs, cfg.series_key(), base.median_ms)
        if not points:
            self.hint(
                f"no run of {cfg.strategy}/{cfg.kernel}/{cfg.executor} b={cfg.batch} "
                "yet: w sweeps the workers"
            )
            return
        ws = [p.workers for p in points]
        lo_w, hi_w = min(ws), max(ws)
        top = max(max(p.high for p in points), hi_w) * 1.1
        plt.plot([lo_w, hi_w], [lo_w, hi_w], color="gray", label="ideal")
        for p in points:  # min-max bar
            plt.plot([p.workers, p.workers], [p.low, p.high], color="cyan")
        plt.scatter(ws, [p.speedup for p in points], marker="●", color="cyan", label="median")
        if len(points) >= 3:  # two points always fit a curve exactly: no fit from them
            pooled = {p.workers: base.median_ms / p.speedup for p in points}
            fit = amdahl_fit(pooled)
            if fit is not None:
                xs = [lo_w + i * (hi_w - lo_w) / 20 for i in range(21)]
                ys = [
                    base.median_ms
                    / (fit.t1_ms * (fit.serial_fraction + (1 - fit.serial_fraction) / x))
                    for x in xs
                ]
                plt.plot(xs, ys, color="yellow", label=f"Amdahl s={fit.serial_fraction:.2f}")
        pad = 0.5 if hi_w > lo_w else 1.0
        plt.xlim(lo_w - pad, hi_w + pad)
        plt.xticks(worker_ticks(ws))
        plt.ylim(0, top)
        b = base.config
        plt.xlabel(f"workers · base {short_ms(base.median_ms)} ms {b.strategy} w1")


# ---- history -----------------------------------------------------------------------


def history_segments(repeats) -> tuple[list[list[tuple[int, float]]], list[int]]:
    """Repeat times split where the configuration changed: (segments, x of each change)."""
    segments: list[list] = []
    marks = []
    prev = None
    for x, (_, t_ms, key) in enumerate(repeats):
        if key != prev:
            if prev is not None:
                marks.append(x)
            segments.append([])
            prev = key
        segments[-1].append((x, t_ms))
    return segments, marks


class HistoryChart(Chart):
    """The time of every timed repeat, newest on the right, on a log scale."""

    chart_title = "ms/repeat, log ┊ config change"
    short_title = "ms/repeat (log)"
    empty_hint = "no runs yet: each repeat's time will show here"
    phase = 0.75

    def version_key(self, model: Model):
        return (len(model.repeats), model.repeats[-1] if model.repeats else None)

    def draw(self, plt, model: Model) -> None:
        reps = list(model.repeats)
        if not reps:
            self.hint(self.empty_hint)
            return
        segments, marks = history_segments(reps)
        # log scale by hand: plotext's own re-applies the log each time a frame is built
        for i, seg in enumerate(segments):
            xs, ys = downsample([p[0] for p in seg], [math.log10(max(p[1], 1e-6)) for p in seg])
            color = series_color(i)
            if len(xs) == 1:
                plt.scatter(xs, ys, color=color, marker="•")
            else:
                plt.plot(xs, ys, color=color, marker="•")
        for x in marks:
            plt.vline(x - 0.5, color="gray")
        values = [ms for _, ms, _ in reps]
        lo, hi = math.log10(max(min(values), 1e-6)), math.log10(max(max(values), 1e-6))
        ticks = log_ticks(min(values), max(values))
        plt.yticks([math.log10(t) for t in ticks], [f"{t:g}" for t in ticks])
        pad = max(0.05, (hi - lo) * 0.08)
        plt.ylim(lo - pad, hi + pad)
        plt.xlim(-0.5, len(reps) - 0.5)
        plt.xticks([])


def log_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 values from lo to hi (ms) for a log axis; at least the two ends' neighbours."""
    lo, hi = max(lo, 1e-6), max(hi, 1e-6)
    out = []
    k = math.floor(math.log10(lo))
    while 10**k <= hi * 10:
        for m in (1, 2, 5):
            v = m * 10**k
            if lo <= v <= hi:
                out.append(float(f"{v:.6g}"))
        k += 1
    if len(out) > 6:  # a wide range: the powers of ten only
        out = [v for v in out if f"{v:g}".lstrip("0.").startswith("1")]
    if len(out) < 2:
        out = sorted({float(f"{lo:.2g}"), float(f"{hi:.2g}")} | set(out))
    return out
