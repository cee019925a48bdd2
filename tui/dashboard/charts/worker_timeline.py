"""The worker timeline pane: one repeat, a lane per worker, and what the run going does."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from partui.tui.dashboard.charts.base import ChartFeed, Redraws, one_line
from partui.tui.dashboard.charts.timeline import timeline_lines
from partui.tui.dashboard.model import Model


class TimelineChart(Redraws, Widget):
    """One repeat of the current (or selected) run: a lane per worker, a box per task."""

    chart_title = "worker timeline · one repeat"
    short_title = "timeline"
    phase = 0.0
    DEFAULT_CSS = "TimelineChart { border: round $primary-darken-2; }"

    def __init__(self, feed: ChartFeed | None = None, **kwargs):
        super().__init__(**kwargs)
        self._init_chart(feed)
        self.view = None
        self.waiting: str | None = None
        self.going: str | None = None  # the line over the lanes while a run is going
        self.keys = ",/. repeat"  # the legend's keys that step the repeat shown

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
        self.keys = "←/→ repeat" if model.read_only else ",/. repeat"

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
                lanes = timeline_lines(self.view, size.width, max(1, size.height - 1), self.keys)
                return Text("\n").join([going, lanes])
            text = timeline_lines(self.view, size.width, size.height, self.keys)
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
