"""The dashboard's plotext charts.

A plotext frame costs tens of milliseconds of CPU, so each chart keeps the
model version it last drew and redraws only when that moves, and every series
is cut to about a hundred points.
"""
from __future__ import annotations

import time

from textual_plotext import PlotextPlot

from .model import Model

MAX_POINTS = 100
TIMELINE_COLUMNS = 100


class Chart(PlotextPlot):
    """A plotext chart that redraws only when its model has changed."""

    chart_title = ""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.border_title = self.chart_title
        self._drawn_version = -1
        self.draws = 0  # frames drawn, for the self-cost figures
        self.drawn_at = 0.0  # time.monotonic() of the last frame

    def update_from(self, model: Model, force: bool = False) -> bool:
        key = self.version_key(model)
        if key == self._drawn_version and not force:
            return False
        self._drawn_version = key
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        self.draw(plt, model)
        self.draws += 1
        self.drawn_at = time.monotonic()
        self.refresh()
        return True

    def version_key(self, model: Model):
        return model.version

    def draw(self, plt, model: Model) -> None:
        raise NotImplementedError


def downsample(xs: list, ys: list, limit: int = MAX_POINTS) -> tuple[list, list]:
    if len(xs) <= limit:
        return xs, ys
    step = len(xs) / limit
    idx = [int(i * step) for i in range(limit)]
    return [xs[i] for i in idx], [ys[i] for i in idx]


class TimelineChart(Chart):
    """Which worker was busy when, over the current (or last) run: one lane per worker."""

    chart_title = "worker timeline: ms since the run started, █ = a task running"

    def draw(self, plt, model: Model) -> None:
        spans = list(model.spans)
        workers = (model.running or model.config).workers
        if not spans:
            _empty(plt, "no tasks yet: r runs once, space starts live mode")
            return
        t0 = min(s.start_ns for s in spans)
        t1 = max(s.end_ns for s in spans)
        width = max(t1 - t0, 1)
        cols = TIMELINE_COLUMNS
        lanes = max(workers, max(s.worker for s in spans) + 1)
        busy = [[False] * cols for _ in range(lanes)]
        for s in spans:
            a = int((s.start_ns - t0) / width * (cols - 1))
            b = int((s.end_ns - t0) / width * (cols - 1))
            for c in range(a, b + 1):
                busy[s.worker][c] = True
        scale = width / 1e6 / (cols - 1)
        for w in range(lanes):
            xs = [c * scale for c in range(cols) if busy[w][c]]
            if xs:
                plt.scatter(xs, [w] * len(xs), marker="█", color=_COLORS[w % len(_COLORS)])
        plt.yticks(list(range(lanes)), [f"w{w}" for w in range(lanes)])
        plt.ylim(-0.6, lanes - 0.4)
        plt.xlim(0, width / 1e6)


def _empty(plt, message: str) -> None:
    plt.text(message, 0.02, 0.5)
    plt.xlim(0, 1)
    plt.ylim(0, 1)
    plt.xticks([])
    plt.yticks([])


_COLORS = ["cyan", "magenta", "green", "yellow", "blue", "red", "orange", "white"]


class CpuChart(Chart):
    """Per-core CPU use over the last 30 s, from the engine's sampler."""

    chart_title = "CPU use per core (%), last 30 s"

    def draw(self, plt, model: Model) -> None:
        samples = list(model.cpu)
        if not samples:
            _empty(plt, "waiting for CPU samples")
            return
        now = samples[-1].t_ns
        xs = [(s.t_ns - now) / 1e9 for s in samples]
        cores = len(samples[-1].per_core)
        for core in range(min(cores, len(_COLORS))):
            ys = [s.per_core[core] if core < len(s.per_core) else 0.0 for s in samples]
            x, y = downsample(xs, ys)
            plt.plot(x, y, label=f"cpu{core}", color=_COLORS[core % len(_COLORS)])
        plt.ylim(0, 100)
        plt.xlim(-30, 0)


class SpeedupChart(Chart):
    """Speedup against workers: the ideal line, the measured points, the Amdahl fit."""

    chart_title = "speedup vs honest baseline (best 1-worker time of any strategy)"

    def draw(self, plt, model: Model) -> None:
        from partui.profiles.analysis import series_key
        cfg = model.config
        key = series_key(cfg.to_dict())
        analysis = model.analysis()
        points = {row.result.config["workers"]: row.stats.speedup_honest
                  for row in analysis.rows
                  if series_key(row.result.config) == key and row.result.ok}
        top = max([model.max_workers, *points.keys()])
        plt.plot([1, top], [1, top], label="ideal", color="gray")
        base = model.baseline_for(cfg)
        if base is None or not points:
            plt.text("no baseline yet: w sweeps 1..N workers", 1.05, top * 0.8)
            plt.xlim(1, top)
            return
        ws = sorted(points)
        plt.scatter(ws, [points[w] for w in ws], label="measured", marker="●", color="cyan")
        series = model.series_for(cfg)
        fit = series.fit if series is not None else None
        if fit is not None:
            xs = [1 + i * (top - 1) / 20 for i in range(21)]
            ys = [base.median_ms / (fit.t1_ms * (fit.serial_fraction + (1 - fit.serial_fraction) / x))
                  for x in xs]
            ceiling = "∞" if fit.ceiling == float("inf") else f"{fit.ceiling:.1f}x"
            plt.plot(xs, ys, label=f"Amdahl s={fit.serial_fraction:.2f} (max {ceiling})",
                     color="yellow")
        plt.xlim(1, top)
        plt.ylim(0, max(top, *points.values()) * 1.05)
        plt.xlabel(f"workers; baseline {base.median_ms:.3g} ms = {base.label()}")


class HistoryChart(Chart):
    """The time of every timed repeat, newest on the right."""

    chart_title = "run times (ms per repeat)"

    def draw(self, plt, model: Model) -> None:
        reps = list(model.repeats)
        if not reps:
            _empty(plt, "no runs yet")
            return
        xs = list(range(len(reps)))
        ys = [ms for _, ms in reps]
        x, y = downsample(xs, ys)
        plt.plot(x, y, marker="dot", color="green")
        plt.ylim(0, max(ys) * 1.1)

