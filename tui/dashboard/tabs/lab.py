"""The lab tab: pick an experiment (CPU core, memory, threads), watch its points arrive, read
what they mean.

Experiments run on a thread of this process: their kernels are native code
that releases the GIL, and while one runs the profile charts are not drawn.
"""

from __future__ import annotations

import threading

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option
from textual_plotext import PlotextPlot

from partui.tui.dashboard.charts.lab import axis_label
from partui.tui.dashboard.charts.lab import draw as draw_points
from partui.tui.dashboard.layout import fit_words


class MemLabTab(Vertical):
    """Experiment list, live chart, explanation."""

    DEFAULT_CSS = """
    MemLabTab #memlab-row { height: 1fr; }
    MemLabTab #experiments { width: 38; border: round $primary; }
    MemLabTab #experiments:focus { border: round $accent; }
    MemLabTab .memlab-chart { border: round $primary-darken-2; }
    MemLabTab #memlab-scroll { height: auto; max-height: 12; border: round $primary; }
    MemLabTab #memlab-scroll:focus { border: round $accent; }
    MemLabTab #memlab-text { padding: 0 1; }
    """

    class Point(Message):
        def __init__(self, point) -> None:
            super().__init__()
            self.point = point

    class Done(Message):
        def __init__(self, result, error: str | None) -> None:
            super().__init__()
            self.result = result
            self.error = error

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._cancel: threading.Event | None = None
        self.points: list = []
        self.result = None
        self.results: list = []  # finished experiments, kept for snapshots
        self.experiment: str | None = None
        self.quick = False  # smaller sizes and fewer repeats (tests)

    def compose(self) -> ComposeResult:
        from partui.profiles.lab.runner import EXPERIMENT_GROUP, EXPERIMENTS, GROUPS

        with Horizontal(id="memlab-row"):
            options = []
            for group in GROUPS:  # a heading (not selectable), then the group's experiments
                options.append(Option(Text(group.upper(), "bold underline"), disabled=True))
                options += [
                    Option(Text.assemble((f"{name}\n", "bold"), (desc, "dim")), id=name)
                    for name, desc in EXPERIMENTS.items()
                    if EXPERIMENT_GROUP[name] == group
                ]
            ol = OptionList(*options, id="experiments")
            ol.border_title = "experiments (enter: run)"
            yield ol
            with Vertical():
                # one chart per x axis: traversal measures matrices by size and a
                # convolution by batch, which share no axis
                for i in range(2):
                    chart = PlotextPlot(id=f"memlab-chart{i}", classes="memlab-chart")
                    chart.border_title = "measured points (median of repeats)"
                    chart.display = i == 0
                    yield chart
        with VerticalScroll(id="memlab-scroll") as scroll:
            scroll.border_title = "what it shows (tab here, then ↑↓ to scroll)"
            yield Static(
                "Choose an experiment and press enter. Points appear as they are "
                "measured; each is the median of several repeats, with its min-max.",
                id="memlab-text",
            )

    @property
    def running(self) -> bool:
        return self._cancel is not None

    @on(OptionList.OptionSelected, "#experiments")
    def chosen(self, event: OptionList.OptionSelected) -> None:
        self.start(event.option.id)

    def start(self, name: str) -> None:
        from partui.profiles.lab.runner import memory_need

        if self.running:
            self.app.notify("an experiment is running: esc stops it", severity="warning")
            return
        self.experiment = name
        self.points = []
        self.result = None
        self._cancel = threading.Event()
        need = memory_need(name, quick=self.quick)
        self.query_one("#memlab-text", Static).update(
            f"running {name} (needs {need / 2**20:.0f} MiB) ... esc stops it"
        )
        self._draw()
        self._run(name, self._cancel, self.quick)

    @work(thread=True, exclusive=True, group="memlab")
    def _run(self, name: str, cancel: threading.Event, quick: bool) -> None:
        from partui.profiles.lab.runner import run_experiment

        try:
            result = run_experiment(
                name, emit=lambda p: self.post_message(self.Point(p)), cancel=cancel, quick=quick
            )
            self.post_message(self.Done(result, None))
        except Exception as exc:  # shown as a message; the dashboard keeps working
            self.post_message(self.Done(None, str(exc)))

    def on_mem_lab_tab_point(self, message: Point) -> None:
        self.points.append(message.point)
        self._draw()

    def on_mem_lab_tab_done(self, message: Done) -> None:
        cancelled = self._cancel is not None and self._cancel.is_set()
        self._cancel = None
        text = self.query_one("#memlab-text", Static)
        if message.error:
            text.update(Text(message.error, "red"))
            self.app.notify(message.error, title="lab", severity="error")
            return
        if cancelled or message.result is None:
            text.update("stopped.")
            return
        self.result = message.result
        self.results.append(message.result)
        self.points = list(message.result.points)
        text.update(message.result.explanation)
        self._draw()

    def cancel(self) -> bool:
        if self._cancel is not None:
            self._cancel.set()
            return True
        return False

    def _draw(self) -> None:
        groups: dict[tuple, dict[str, list]] = {}  # (x label, y label) -> series -> points
        for p in self.points:
            groups.setdefault((p.x_label, p.y_label), {}).setdefault(p.series, []).append(p)
        charts = [self.query_one(f"#memlab-chart{i}", PlotextPlot) for i in range(2)]
        names = list(groups) or [None]
        for i, chart in enumerate(charts):
            chart.display = i < len(names)
            if i >= len(names):
                continue
            plt = chart.plt
            plt.clear_data()
            plt.clear_figure()
            series = groups.get(names[i], {})
            title = (
                f"{self.experiment}: {names[i][1]} against {axis_label(names[i][0])}"
                if names[i]
                else "measured points (median of repeats)"
            )
            chart.border_title = fit_words(title, (chart.size.width or 60) - 6)
            markers = self.result.markers if i == 0 and self.result is not None else []
            chart.border_subtitle = draw_points(
                plt, series, markers, chart.size.width or 60, chart.size.height or 20
            )
            chart.refresh()
