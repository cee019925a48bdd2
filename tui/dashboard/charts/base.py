"""What every chart of the profile tab shares: its throttle, its messages, its errors.

A plotext frame costs tens of milliseconds of CPU, so each chart redraws on its own
timer (at most once a second, the four out of step) and only when what it shows moved;
every series is cut to about a hundred points. A chart that fails to draw says so on one
line in its own pane; the dashboard goes on. A chart with nothing to show yet says what
would fill it, in the theme's colours, instead of drawing made-up lines.

The data each chart draws comes from small functions (`cpu_segments`, `speedup_points`,
`history_segments`) that tests check against hand-built samples and runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual.widget import Widget
from textual_plotext import PlotextPlot

from partui.tui.dashboard.model import Model

MAX_POINTS = 100
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


@dataclass
class ChartFeed:
    """What a chart's timer reads: the model on screen, the time of the last key press
    (time.monotonic()), and how many of the tab's charts are on screen."""

    shown: Callable[[], Model]
    key_at: Callable[[], float] = lambda: 0.0
    on_screen: Callable[[], int] = lambda: 1


if TYPE_CHECKING:
    WidgetMixin = Widget
else:  # a mixin: the chart's first widget base stays the one its CSS type names follow
    WidgetMixin = object


class Redraws(WidgetMixin):
    """What every chart shares: its own throttle, a version key, errors kept in the pane."""

    chart_title = ""
    short_title = ""  # for a narrow pane: a title is never cut
    empty_hint = ""  # shown until the chart has something measured to draw
    phase = 0.0  # seconds after mount of the first redraw: the charts take turns

    def _init_chart(self, feed: ChartFeed | None) -> None:
        self.feed = feed  # None: drawn only when asked (update_from)
        self.border_title = self.chart_title
        self._drawn_version: tuple | None = None
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
        """Redraw from the feed's model at most every CHART_INTERVAL_S (live app only)."""

        def begin():
            self.set_interval(CHART_INTERVAL_S, self.tick)

        self.set_timer(self.phase + 0.05, begin)

    def tick(self) -> None:
        if self.feed is None or not self.is_on_screen:
            return
        now = time.monotonic()
        if now - self.feed.key_at() < KEY_QUIET_S:
            return
        if now - self.drawn_at < self.frame_wait_s():
            return
        self.update_from(self.feed.shown())

    def frame_wait_s(self) -> float:
        """The least time between two frames of this chart: its share of the charts' budget."""
        on_screen = self.feed.on_screen() if self.feed is not None else 1
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

    def __init__(self, feed: ChartFeed | None = None, **kwargs):
        super().__init__(**kwargs)
        self._init_chart(feed)

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
