"""The history chart: the time of every timed repeat, on a log scale."""

from __future__ import annotations

import math

from partui.tui.dashboard.charts.base import Chart, downsample
from partui.tui.dashboard.colors import series_color
from partui.tui.dashboard.model import Model


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
        pick = model.repeat_pick() if model.read_only else None
        return (len(model.repeats), model.repeats[-1] if model.repeats else None, pick)

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
        pick = model.repeat_pick() if model.read_only else None
        own = [x for x, (n, _, _) in enumerate(reps) if pick is not None and n == pick.run]
        if pick is not None and len(own) == pick.count:  # a saved run's repeat on screen
            plt.scatter(
                [own[pick.repeat]],
                [math.log10(max(pick.wall_ms, 1e-6))],
                marker="◆",
                color="magenta",
            )
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
