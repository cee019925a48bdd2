"""The roofline chart: this machine's roofs, log-log, and the session's runs placed under them.

Roofs come from the kept measurement (`partui roofline` measures them in about ten seconds and
keeps them per CPU); the chart never measures, so drawing it costs no kernel time. The roofs
drawn are those at the current configuration's worker count: the memory roofs (L1, L2, L3,
DRAM) as sloped lines up to their ridge, the GEMM peak flat. The current configuration's
newest run is the bright point, with its ridge marked; earlier runs of the session are faint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from textual.widget import Widget

from partui.profiles.roofline.placing import Point, attainable, place_result
from partui.profiles.roofline.roofs import LEVELS, RoofSet
from partui.tui.dashboard.charts.base import MAX_POINTS, Chart
from partui.tui.dashboard.charts.history import log_ticks
from partui.tui.dashboard.model import Model

LEVEL_COLORS = {"L1": "green", "L2": "cyan", "L3": "blue", "DRAM": "magenta"}
NO_ROOFS = (
    "no roofs measured on this machine yet: `partui roofline` measures them "
    "(about ten seconds) and keeps them; then f here again"
)


@dataclass(frozen=True)
class RoofLine:
    name: str  # L1 .. DRAM, or peak
    value: float  # GB/s or GFLOP/s
    points: tuple[tuple[float, float], ...]  # (FLOP/byte, GFLOP/s), two ends


def roof_lines(roofs: RoofSet, threads: int, x_lo: float, x_hi: float) -> list[RoofLine]:
    """The roofs at `threads` as line segments from x_lo to x_hi: each memory roof rises to
    its ridge with the peak (bandwidth x intensity); the peak runs flat from the first ridge."""
    peak = roofs.compute(threads)
    if peak is None:
        return []
    out = []
    ridges = []
    for level in LEVELS:
        bw = roofs.bandwidth(level, threads)
        if bw is None:
            continue
        ridge = peak / bw
        ridges.append(ridge)
        end = min(ridge, x_hi)
        out.append(RoofLine(level, bw, ((x_lo, bw * x_lo), (end, bw * end))))
    start = max(x_lo, min(ridges, default=x_lo))
    out.append(RoofLine("peak", peak, ((start, peak), (x_hi, peak))))
    return out


def session_points(roofs: RoofSet, model: Model) -> tuple[Point | None, list[Point]]:
    """(the current configuration's newest run, the session's other runs) under the roofs;
    forward passes only (the traffic model is the forward pass's)."""
    key = model.config.key()
    current = None
    others = []
    for r in list(model.runs)[-MAX_POINTS:]:
        p = place_result(roofs, r)
        if p is None:
            continue
        if r.config.key() == key and r.config.pass_kind == model.config.pass_kind:
            if current is not None:
                others.append(current)
            current = p
        else:
            others.append(p)
    return current, others


def _log(v: float) -> float:
    return math.log10(max(v, 1e-9))


class RooflineChart(Chart):
    """GFLOP/s against FLOP/byte, log-log: the roofs, the session's runs, the ridge."""

    chart_title = "roofline, log-log: GFLOP/s vs FLOPs / least bytes (in, weights, out)"
    short_title = "roofline"
    empty_hint = NO_ROOFS
    phase = 0.6

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.roofs: RoofSet | None = None
        self._looked = False  # the kept roofs were read (once: a file, per CPU)

    def use_roofs(self, roofs: RoofSet | None) -> None:
        """Roofs to draw (tests, or roofs just measured), instead of the kept ones."""
        self.roofs, self._looked = roofs, True
        self._drawn_version = None

    def look_again(self) -> None:
        """Without roofs, read the kept ones again at the next draw (a `partui roofline`
        run since may have measured them)."""
        if self.roofs is None:
            self._looked = False
            self._drawn_version = None

    def roofs_now(self) -> RoofSet | None:
        """The roofs drawn: the kept ones, read at the first call."""
        if not self._looked:
            from partui.profiles.roofline import roofs as kept

            self.roofs, self._looked = kept.load(), True
        return self.roofs

    def version_key(self, model: Model):
        return (model.run_count, model.config, id(self.roofs))

    def draw(self, plt, model: Model) -> None:
        roofs = self.roofs_now()
        if roofs is None:
            self.hint(NO_ROOFS)
            return
        threads = model.config.workers
        current, others = session_points(roofs, model)
        pts = [p for p in (*others, current) if p is not None]
        peak = roofs.compute(threads) or 1.0
        xs = [p.intensity_flop_per_byte for p in pts]
        ridges = [peak / bw for lv in LEVELS if (bw := roofs.bandwidth(lv, threads))]
        x_lo = min([*xs, *ridges, 1.0]) / 3
        x_hi = max([*xs, *ridges, 10.0]) * 3
        lines = roof_lines(roofs, threads, x_lo, x_hi)
        ys = [p.gflops for p in pts] + [y for ln in lines for _, y in ln.points]
        y_lo, y_hi = min(ys) / 2, max(ys) * 2
        # one cell in log units: the chart fills its pane (its own size is 0 until shown)
        box = self.parent.size if isinstance(self.parent, Widget) else self.size
        col = (_log(x_hi) - _log(x_lo)) / max(30, box.width - 10)
        row = (_log(y_hi) - _log(y_lo)) / max(8, box.height - 7)
        taken: list[tuple[float, float, int]] = []  # labels placed: from, to, rows down
        for ln in lines:
            (ax, ay), (bx, by) = ln.points
            color = LEVEL_COLORS.get(ln.name, "white")
            plt.plot([_log(ax), _log(bx)], [_log(ay), _log(by)], color=color)
            if ln.name == "peak":  # right-aligned on the flat roof
                plt.text("peak", _log(bx) - 6 * col, _log(by), color=color)
                continue
            # the level's name under the peak, left of its ridge; a row lower where the
            # label of a ridge close by is already
            x0 = _log(bx) - (len(ln.name) + 1) * col
            down = 1 + sum(1 for a, b, _ in taken if a < x0 + (len(ln.name) + 1) * col and x0 < b)
            taken.append((x0, x0 + (len(ln.name) + 1) * col, down))
            plt.text(ln.name, x0, _log(by) - down * row, color=color)
        if others:
            plt.scatter([_log(p.intensity_flop_per_byte) for p in others],
                        [_log(p.gflops) for p in others], marker="•", color="gray")  # fmt: skip
        if current is not None:
            roof = attainable(roofs, current.intensity_flop_per_byte, current.working_set_bytes,
                              current.workers)  # fmt: skip
            if roof is not None:
                plt.scatter(
                    [_log(roof.ridge)], [_log(roof.peak_gflops)], marker="◆", color="yellow"
                )
            plt.scatter([_log(current.intensity_flop_per_byte)], [_log(current.gflops)],
                        marker="●", color="yellow")  # fmt: skip
        xt = log_ticks(x_lo, x_hi)
        yt = log_ticks(y_lo, y_hi)
        plt.xticks([_log(t) for t in xt], [f"{t:g}" for t in xt])
        plt.yticks([_log(t) for t in yt], [f"{t:g}" for t in yt])
        plt.xlim(_log(x_lo), _log(x_hi))
        plt.ylim(_log(y_lo), _log(y_hi))
        plt.title(self.roofs_line(roofs, threads))
        plt.xlabel(self.caption(model, current, roofs))

    @staticmethod
    def roofs_line(roofs: RoofSet, threads: int) -> str:
        """The roofs' figures at `threads`: GB/s of each level, the peak, when measured."""
        levels = " ".join(
            f"{lv} {bw:.0f}" for lv in LEVELS if (bw := roofs.bandwidth(lv, threads)) is not None
        )
        return f"w{threads} GB/s {levels} · peak {roofs.compute(threads) or 0:.0f} GFLOP/s"

    @staticmethod
    def caption(model: Model, current: Point | None, roofs: RoofSet) -> str:
        """What the bright point is and how close it comes, or why there is none."""
        cfg = model.config
        if current is None:
            what = "forward runs only" if cfg.pass_kind != "forward" else "r runs it"
            return (
                f"FLOP/byte · ● {cfg.layer} w{cfg.workers}: no run yet ({what}) · roofs of "
                f"{roofs.measured[:10]}"
            )
        above = " ABOVE ROOF" if current.of_roof > 1 else ""
        at = attainable(roofs, current.intensity_flop_per_byte, current.working_set_bytes,
                        current.workers)  # fmt: skip
        ridge = f" · ◆ ridge {at.ridge:.2g}" if at is not None else ""
        return (
            f"FLOP/byte · ● {cfg.layer} w{cfg.workers} {current.of_roof:.0%} of roof "
            f"({current.bound}, {current.memory_roof}){above}{ridge}"
        )
