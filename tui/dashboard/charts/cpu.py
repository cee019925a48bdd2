"""The CPU chart: per-core use and other programs over the last 30 s."""

from __future__ import annotations

import time
from dataclasses import dataclass

from partui.tui.dashboard.charts.base import Chart, downsample
from partui.tui.dashboard.colors import CORES, OTHERS
from partui.tui.dashboard.model import Model

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
