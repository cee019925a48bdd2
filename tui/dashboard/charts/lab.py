"""How a memory-lab chart is drawn: its axes, min-max bars, markers and legend.

Sizes span several powers of two, so a wide x axis is drawn in log2 space with a tick at
each (or every other, ...) power of two, read in B/KiB/MiB/GiB when the axis is in bytes.
Each point carries its min-max bar. The legend goes in the pane's bottom border, where it
cannot cover the plot, and the markers (cache sizes, the line size) are labelled on their own
rows so that no two labels overlap.
"""

from __future__ import annotations

import math

from textual.markup import escape

from partui.profiles.system.units import size_text
from partui.tui.dashboard.colors import series_color

LOG_SPAN = 100  # x max / x min beyond which the axis is logarithmic
TICK_CELLS = 9  # room a tick label needs, in cells


def is_bytes(x_label: str) -> bool:
    return "bytes" in x_label


def axis_label(x_label: str) -> str:
    """The x label without its unit when the ticks carry it ("data size (bytes)" -> "data size")."""
    return x_label.replace(" (bytes)", "") if is_bytes(x_label) else x_label


def log2_ticks(lo: float, hi: float, cells: int, in_bytes: bool) -> tuple[list[float], list[str]]:
    """Ticks at powers of two between `lo` and `hi` (log2 units), as many as `cells` hold."""
    first, last = math.ceil(math.log2(lo) - 1e-9), math.floor(math.log2(hi) + 1e-9)
    powers = list(range(first, last + 1)) or [round(math.log2(lo))]
    room = max(2, cells // TICK_CELLS)
    step = 1
    while len(powers[::step]) > room:
        step += 1
    shown = powers[::step]
    labels = [size_text(2.0**p) if in_bytes else f"{2**p:g}" for p in shown]
    return [float(p) for p in shown], labels


def draw(
    plt, series: dict[str, list], markers: list[tuple[float, str]], width: int, height: int
) -> str:
    """Draw the points of `series` (name -> points) on `plt`; returns the legend (markup)."""
    xs = [p.x for pts in series.values() for p in pts]
    if not xs:
        return ""
    first = next(iter(series.values()))[0]
    log_x = min(xs) > 0 and max(xs) / min(xs) > LOG_SPAN

    def fx(x):  # noqa: E306 - the x transform of this chart
        return math.log2(x) if log_x else x

    legend = []
    for j, (name, pts) in enumerate(series.items()):
        color = series_color(j)
        for p in pts:  # the min-max bar of each point, under its median
            plt.plot([fx(p.x), fx(p.x)], [p.min, p.max], color=color, marker="│")
        plt.plot([fx(p.x) for p in pts], [p.median for p in pts], marker="dot", color=color)
        legend.append(f"[{color}]●[/] {escape(name)}")
    plt.xlabel(axis_label(first.x_label))
    plt.ylabel(first.y_label)
    lo, hi = min(xs), max(xs)
    if log_x:
        ticks, labels = log2_ticks(lo, hi, max(10, width - 10), is_bytes(first.x_label))
        plt.xticks(ticks, labels)
    ys = [p.max for pts in series.values() for p in pts] + [
        p.min for pts in series.values() for p in pts
    ]
    y_lo, y_hi = min(0.0, min(ys)), max(ys) * 1.05 or 1.0
    shown = [(x, label) for x, label in markers if lo <= x <= hi]
    if shown:
        # one row per label from the top, so that no two overlap however close their lines
        rows = max(1, height - 6)
        row = (y_hi - y_lo) / rows
        y_hi += row * len(shown)  # room above the data for the labels
        for k, (x, label) in enumerate(sorted(shown)):
            plt.vline(fx(x), "gray")
            right = (fx(x) - fx(lo)) > 0.6 * (fx(hi) - fx(lo) or 1)
            plt.text(
                f" {label} " if not right else f"{label} ",
                fx(x),
                y_hi - row * (k + 0.5),
                color="gray",
                alignment="right" if right else "left",
            )
    plt.ylim(y_lo, y_hi)
    return "  ".join(legend)
