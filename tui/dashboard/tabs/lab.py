"""The lab tab: pick an experiment (CPU core, memory, threads), watch its points arrive, read
what they mean.

An experiment runs in a child process (profiles.service.lab), as profile runs and training
do: its kernels keep cores busy for seconds, and partui's header counts them as partui's,
not as the dashboard's. The tab drains the child's points on a timer while it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option
from textual_plotext import PlotextPlot

from partui.profiles.system.units import size_text
from partui.tui.dashboard.charts.lab import axis_label
from partui.tui.dashboard.charts.lab import draw as draw_points
from partui.tui.dashboard.keys import KeyItem, memlab_keys
from partui.tui.dashboard.layout import fit_words
from partui.tui.dashboard.tabs.base import TabUnit

DRAIN_S = 0.2  # how often the tab takes the child's points while an experiment runs


class MemLabTab(TabUnit):
    """Experiment list, live chart, explanation."""

    tab_id = "memlab"
    title = "lab"

    BINDINGS = [Binding("escape", "cancel", "Stop experiment")]

    DEFAULT_CSS = """
    MemLabTab #memlab-row { height: 1fr; }
    MemLabTab #experiments { width: 38; border: round $primary; }
    MemLabTab #experiments:focus { border: round $accent; }
    MemLabTab .memlab-chart { border: round $primary-darken-2; }
    MemLabTab #memlab-scroll { height: auto; max-height: 12; border: round $primary; }
    MemLabTab #memlab-scroll:focus { border: round $accent; }
    MemLabTab #memlab-text { padding: 0 1; }
    """

    def __init__(self, runner_factory: Callable[[], Any] | None = None, **kwargs):
        super().__init__(**kwargs)
        self._factory = runner_factory  # how an experiment runs (tests: a thread)
        self.runner: Any = None  # the experiment running, if any
        self._drain: Timer | None = None
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
        return self.runner is not None

    @property
    def mode(self) -> str | None:
        return f"lab: {self.experiment}" if self.running else None

    def key_items(self, compact: bool) -> tuple[list[KeyItem], list[KeyItem]]:
        return memlab_keys()

    def help_keys(self) -> list[tuple[str, str]]:
        return [
            ("↑ ↓", "choose an experiment"),
            ("enter", "run the experiment under the cursor (in a process of its own)"),
            ("esc", "stop the experiment"),
        ]

    def take_focus(self) -> None:
        self.query_one("#experiments").focus()

    @on(OptionList.OptionSelected, "#experiments")
    def chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.start(event.option.id)

    def start(self, name: str) -> None:
        from partui.profiles.lab.runner import memory_need

        if self.running:
            self.notify("an experiment is running: esc stops it", severity="warning")
            return
        if self._factory is None:
            from partui.profiles.service.lab import LabProcess

            self._factory = LabProcess
        self.experiment = name
        self.points = []
        self.result = None
        need = memory_need(name, quick=self.quick)
        self.query_one("#memlab-text", Static).update(
            f"running {name} (needs {size_text(need)}) ... esc stops it"
        )
        self._draw()
        self.runner = self._factory()
        self.runner.start(name, self.quick)
        self._drain = self.set_interval(DRAIN_S, self.tick)
        self.report()

    def tick(self) -> None:
        """Take the experiment's points; at its end, its result or its error."""
        if self.runner is None:
            return
        events = self.runner.drain()
        for ev in events:
            if ev[0] == "point":
                self.points.append(ev[1])
            else:
                self._finished(
                    ev[1] if ev[0] == "done" else None, ev[1] if ev[0] == "error" else None
                )
                return
        if events:
            self._draw()

    def _finished(self, result, error: str | None) -> None:
        self.runner.close()
        self.runner = None
        if self._drain is not None:
            self._drain.stop()
            self._drain = None
        self.report()
        text = self.query_one("#memlab-text", Static)
        if error:
            text.update(Text(error, "red"))
            self.notify(error, title="lab", severity="error")
            return
        if result is None or result.cancelled:
            text.update("stopped.")
            return
        self.result = result
        self.results.append(result)
        self.points = list(result.points)
        text.update(result.explanation)
        self._draw()

    def action_cancel(self) -> None:
        """esc stops the experiment."""
        if not self.cancel():
            self.notify("no experiment is running", timeout=2)

    def cancel(self) -> bool:
        if self.runner is not None:
            self.runner.stop()
            return True
        return False

    def _draw(self) -> None:
        groups: dict[tuple, dict[str, list]] = {}  # (x label, y label) -> series -> points
        for p in self.points:
            groups.setdefault((p.x_label, p.y_label), {}).setdefault(p.series, []).append(p)
        charts = [self.query_one(f"#memlab-chart{i}", PlotextPlot) for i in range(2)]
        names: list[tuple | None] = [*groups] or [None]
        for i, chart in enumerate(charts):
            chart.display = i < len(names)
            if i >= len(names):
                continue
            plt = chart.plt
            plt.clear_data()
            plt.clear_figure()
            name = names[i]
            series = groups.get(name, {}) if name is not None else {}
            title = (
                f"{self.experiment}: {name[1]} against {axis_label(name[0])}"
                if name is not None
                else "measured points (median of repeats)"
            )
            chart.border_title = fit_words(title, (chart.size.width or 60) - 6)
            markers: list = self.result.markers if i == 0 and self.result is not None else []
            chart.border_subtitle = draw_points(
                plt, series, markers, chart.size.width or 60, chart.size.height or 20
            )
            chart.refresh()
