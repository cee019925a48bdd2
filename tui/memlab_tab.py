"""The memory-lab tab: pick an experiment, watch its points arrive, read what they mean.

Experiments run on a thread of this process: their kernels are native code
that releases the GIL, and while one runs the profile charts are not drawn.
"""
from __future__ import annotations

import threading

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option
from textual_plotext import PlotextPlot

COLORS = ["cyan", "magenta", "green", "yellow", "blue", "red"]


class MemLabTab(Vertical):
    """Experiment list, live chart, explanation."""

    DEFAULT_CSS = """
    MemLabTab #memlab-row { height: 1fr; }
    MemLabTab #experiments { width: 38; border: round $primary; }
    MemLabTab #experiments:focus { border: round $accent; }
    MemLabTab #memlab-chart { border: round $primary-darken-2; }
    MemLabTab #memlab-text { height: auto; max-height: 12; border: round $primary; padding: 0 1; }
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

    def compose(self) -> ComposeResult:
        from partui.profiles.memlab import EXPERIMENTS
        with Horizontal(id="memlab-row"):
            options = [Option(Text.assemble((f"{name}\n", "bold"), (desc, "dim")), id=name)
                       for name, desc in EXPERIMENTS.items()]
            ol = OptionList(*options, id="experiments")
            ol.border_title = "experiments (enter: run, esc: stop)"
            yield ol
            chart = PlotextPlot(id="memlab-chart")
            chart.border_title = "measured points"
            yield chart
        text = Static("Choose an experiment and press enter. Points appear as they are measured; "
                      "each is the median of several repeats, with its min-max.", id="memlab-text")
        text.border_title = "what it shows"
        yield text

    @property
    def running(self) -> bool:
        return self._cancel is not None

    @on(OptionList.OptionSelected, "#experiments")
    def chosen(self, event: OptionList.OptionSelected) -> None:
        self.start(event.option.id)

    def start(self, name: str) -> None:
        from partui.profiles.memlab import memory_need
        if self.running:
            self.app.notify("an experiment is running: esc stops it", severity="warning")
            return
        self.experiment = name
        self.points = []
        self.result = None
        self._cancel = threading.Event()
        need = memory_need(name)
        self.query_one("#memlab-text", Static).update(
            f"running {name} (needs {need / 2**20:.0f} MiB) ... esc stops it")
        self._draw()
        self._run(name, self._cancel)

    @work(thread=True, exclusive=True, group="memlab")
    def _run(self, name: str, cancel: threading.Event) -> None:
        from partui.profiles.memlab import run_experiment
        try:
            result = run_experiment(name, emit=lambda p: self.post_message(self.Point(p)),
                                    cancel=cancel)
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
            self.app.notify(message.error, title="memory lab", severity="error")
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
        chart = self.query_one("#memlab-chart", PlotextPlot)
        plt = chart.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self.experiment or "")
        series: dict[str, list] = {}
        for p in self.points:
            series.setdefault(p.series, []).append(p)
        log_x = False
        for i, (name, pts) in enumerate(series.items()):
            xs = [p.x for p in pts]
            log_x = log_x or (max(xs) / max(min(xs), 1e-12) > 1000)
            plt.plot(xs, [p.median for p in pts], label=name, marker="dot",
                     color=COLORS[i % len(COLORS)])
        if self.points:
            plt.xlabel(self.points[-1].x_label)
            plt.ylabel(self.points[-1].y_label)
            if log_x:
                plt.xscale("log")
        if self.result is not None:
            for x, label in getattr(self.result, "markers", []) or []:
                plt.vline(x, "gray")
        chart.refresh()
