"""The speedup chart: measured speedup per worker count against the honest baseline."""

from __future__ import annotations

import math
from dataclasses import dataclass

from partui.tui.dashboard.charts.base import Chart
from partui.tui.dashboard.model import Model
from partui.tui.text.table import short_ms


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
        return (model.run_count, model.config, model.repeat_pick() if model.read_only else None)

    def draw(self, plt, model: Model) -> None:
        # a saved run: the series of the run on the timeline, its repeat on screen marked
        pick = model.repeat_pick() if model.read_only else None
        picked = model.run_number(pick.run) if pick is not None else None
        cfg = picked.config if picked is not None else model.config
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
        mark = base.median_ms / pick.wall_ms if pick is not None and pick.wall_ms > 0 else None
        top = max(max(p.high for p in points), hi_w, mark or 0) * 1.1
        plt.plot([lo_w, hi_w], [lo_w, hi_w], color="gray", label="ideal")
        for p in points:  # min-max bar
            plt.plot([p.workers, p.workers], [p.low, p.high], color="cyan")
        plt.scatter(ws, [p.speedup for p in points], marker="●", color="cyan", label="median")
        if mark is not None and picked is not None and pick is not None:
            label = f"run {pick.run} repeat {pick.repeat + 1}"
            plt.scatter([picked.config.workers], [mark], marker="◆", color="magenta", label=label)
        if len(points) >= 3:  # two points always fit a curve exactly: no fit from them
            # the analysis's fit: none where the fewest and most workers do not differ
            # significantly (a fit of noise), the same as the text reports
            series = model.series_for(cfg)
            fit = series.fit if series is not None else None
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
