"""The profile tab: pick a layer and a strategy, run it, watch the workers, CPU and speedup.

It owns the session's run state (single runs asked for, live mode, a worker sweep, a
snapshot viewed read-only) and folds the engine's events into the session's model; the
app owns the engine's lifecycle and pumps the events here. Each chart and the runs table
redraw from the model on their own timers, only when what they show moved and only while
they are on screen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.widgets import DataTable

from partui.profiles.records.config import RunConfig
from partui.profiles.records.events import (
    Compiling,
    CpuSample,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
)
from partui.profiles.store.baselines import BaselineBook
from partui.profiles.system.conditions import Conditions
from partui.profiles.system.machine import MachineInfo
from partui.tui.dashboard.charts.base import ChartFeed, Redraws
from partui.tui.dashboard.charts.cpu import CpuChart
from partui.tui.dashboard.charts.help import HELP_CHARTS
from partui.tui.dashboard.charts.history import HistoryChart
from partui.tui.dashboard.charts.roofline import RooflineChart
from partui.tui.dashboard.charts.speedup import SpeedupChart
from partui.tui.dashboard.charts.worker_timeline import TimelineChart
from partui.tui.dashboard.engine_link import EngineLink
from partui.tui.dashboard.keys import KeyItem, binding_help, profile_keys
from partui.tui.dashboard.layout import charts_shown, top_rows
from partui.tui.dashboard.model import Model
from partui.tui.dashboard.tabs.profile_help import HELP_COLUMNS, KEY_HELP
from partui.tui.dashboard.tabs.replay import ReplayUnit
from partui.tui.dashboard.widgets.conditions_caption import conditions_caption
from partui.tui.dashboard.widgets.layer_list import LayerList
from partui.tui.dashboard.widgets.runs_table import RunsTable
from partui.tui.dashboard.widgets.settings import SettingsPane

TABLE_MIN_INTERVAL_S = 2.0  # the runs table (its rendering costs more than a chart's)


class ProfileTab(ReplayUnit):
    """Layers and settings, four charts, the runs table; the keys that drive the engine."""

    tab_id = "profile"
    title = "profile"

    BINDINGS = [
        Binding("r", "run_once", "Run"),
        Binding("space", "toggle_live", "Live"),
        Binding("escape", "cancel", "Stop run"),
        Binding("t", "cycle('strategy', 1)", "Strategy"),
        Binding("T", "cycle('strategy', -1)", "Strategy back", show=False),
        Binding("k", "cycle('kernel', 1)", "Kernel"),
        Binding("e", "cycle('executor', 1)", "Executor"),
        Binding("E", "cycle('executor', -1)", "Executor back", show=False),
        Binding("plus,equals_sign", "workers(1)", "Workers+"),
        Binding("minus", "workers(-1)", "Workers-"),
        Binding("right_square_bracket", "batch(1)", "Batch x2", show=False),
        Binding("left_square_bracket", "batch(-1)", "Batch /2", show=False),
        Binding("w", "sweep", "Sweep"),
        Binding("comma", "repeat(-1)", "Repeat-", show=False),
        Binding("full_stop", "repeat(1)", "Repeat+", show=False),
        Binding("l", "back_to_live", "Back to live", show=False),
        Binding("c", "next_chart", "Next chart (compact layout)", show=False),
        Binding("f", "roofline", "Roofline"),
        *ReplayUnit.BINDINGS,  # here too: the help and the command palette list them
    ]

    def __init__(
        self,
        session: Model,
        engine: EngineLink,
        live: bool = False,
        key_at: Callable[[], float] = lambda: 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.session = session
        self.engine = engine
        self.viewing: Model | None = None
        self.live = live  # the engine runs the session's configuration back to back
        self.sweep_left: list[RunConfig] = []  # configurations of a sweep not finished yet
        self.queued: list[RunConfig] = []  # single runs (r) the engine has not started yet
        self.machine: MachineInfo | None = None  # for the settings' warnings
        self.conditions_now: Conditions | None = None  # the machine's, before any run
        self.layout_name = "full"  # layout.layout_for(): small, compact or full
        self.chart_index = 0  # the chart shown by the compact layout (c: the next one)
        self.roofline = False  # f: the roofline in place of the four charts
        self._key_at = key_at
        self._table_shown: tuple | None = None  # (model, runs, failures) the table shows

    def compose(self) -> ComposeResult:
        feed = ChartFeed(lambda: self.shown, self._key_at, self._charts_on_screen)
        with Horizontal(id="top"):
            with Vertical(id="left"):
                yield LayerList(id="layers")
                yield SettingsPane(id="settings")
            with Grid(id="charts"):
                yield TimelineChart(feed, id="timeline")
                yield CpuChart(feed, id="cpu")
                yield SpeedupChart(feed, id="speedup")
                yield HistoryChart(feed, id="history")
                yield RooflineChart(feed, id="roofline")
        yield RunsTable(id="runs")

    def start_timers(self) -> None:
        """The live loop: each chart and the runs table redraw on their own timers."""
        for chart in self.charts():
            chart.start_timer()
        self.set_interval(TABLE_MIN_INTERVAL_S, self.redraw_table)

    def charts(self) -> list[Redraws]:
        names = ("timeline", "cpu", "speedup", "history", "roofline")
        return [self.query_one(f"#{n}", Redraws) for n in names]

    def _charts_on_screen(self) -> int:
        return sum(1 for chart in self.charts() if chart.is_on_screen)

    @property
    def shown(self) -> Model:
        return self.viewing or self.session

    @property
    def run_pending(self) -> bool:
        """A run is going or asked for (r, a sweep)."""
        return self.session.running is not None or bool(self.sweep_left) or bool(self.queued)

    @property
    def busy(self) -> bool:
        """A run is going, queued, or due (live mode)."""
        return self.run_pending or self.live

    @property
    def mode(self) -> str | None:
        if self.viewing is not None:
            return self.snapshot_mode()
        pending = self.queued or self.sweep_left
        config = self.session.running or (pending[0] if pending else self.session.config)
        layer = config.layer
        if self.live:
            return f"LIVE {layer}"
        return f"running {layer}" if self.run_pending else None

    def use_machine(self, machine: MachineInfo, book: BaselineBook) -> None:
        """This machine (for the settings' warnings) and its book of best 1-worker times."""
        self.machine = machine
        self.session.book = book
        if book.problem:
            self.notify(book.problem, severity="warning")
        self.refresh_panes()

    # -- the engine's events ----------------------------------------------------
    def fold(self, events: list) -> None:
        """Fold a batch of the engine's events into the session; redraw what they moved."""
        running = self.session.running
        queued = len(self.queued)
        self.session.apply(events)
        for ev in events:  # a single run asked for has started (or failed before it could)
            config = getattr(ev, "config", None)
            if isinstance(ev, (RunStarted, RunFailed, RunCancelled)) and config in self.queued:
                self.queued.remove(config)
            elif isinstance(ev, RunFailed) and config is None:  # the engine itself failed
                self.queued = []
        # the settings pane's "running: ..." line; live mode says "live mode ON" throughout,
        # so its runs (several a second) do not redraw the pane
        if not self.live and (
            (self.session.running is None) != (running is None) or len(self.queued) != queued
        ):
            self.show_settings()
        cpu = self.query_one(CpuChart)
        if cpu.message and self.viewing is None and any(isinstance(ev, CpuSample) for ev in events):
            cpu.update_from(self.session)  # the first samples: lines at once
        for ev in events:
            if isinstance(ev, RunFinished) and self.session.book is not None:
                if self.session.book.offer(ev.result):
                    self.session.book.save()  # a new best single-worker time on this machine
            if isinstance(ev, RunFailed):
                self.notify(ev.error, title="run failed", severity="error", timeout=8)
                if self.live and ev.result is None:
                    self.live = False  # the engine stopped live mode: it cannot run this
                    self.refresh_panes()
            if isinstance(ev, (RunFinished, RunFailed, RunCancelled)) and self.sweep_left:
                config = ev.result.config if isinstance(ev, RunFinished) else ev.config
                if config == self.sweep_left[0]:
                    self.sweep_left.pop(0)
                    if not self.sweep_left:
                        self.notify("worker sweep done", timeout=4)
            if isinstance(ev, Compiling) and ev.done and ev.left == 0:
                self.notify("kernels compiled: later runs start at once", timeout=4)
        self.report()

    def sync_live(self) -> None:
        """Tell the engine what live mode should run now: the session's configuration, if valid."""
        if self.engine.engine is not None:
            valid = self.live and not self.session.not_applicable
            self.engine.engine.set_live(self.session.config if valid else None)

    # -- drawing ----------------------------------------------------------------
    def redraw(self, force: bool = False) -> None:
        """Redraw the tab now: the table and every chart (another model is shown, the tab
        came back, or a test wants the screen up to date)."""
        if not self.is_on_screen and not force:
            return
        self.redraw_table(force)
        self.show_settings()
        for chart in self.charts():
            chart.update_from(self.shown, force=force)

    def redraw_table(self, force: bool = False) -> None:
        """The runs table, when runs were added (its own timer: every TABLE_MIN_INTERVAL_S)."""
        if not self.is_on_screen and not force:
            return
        model = self.shown
        shown = (id(model), model.run_count, len(model.failures))
        if force or self._table_shown != shown:
            self._table_shown = shown
            self.query_one(RunsTable).show(model, self.query_one(RooflineChart).roofs_now())
            self.show_conditions()

    def show_conditions(self) -> None:
        """Under the runs table: what the run on the timeline ran under."""
        caption = conditions_caption(self.shown, self.conditions_now)
        self.query_one(RunsTable).border_subtitle = caption

    def show_settings(self) -> None:
        queued = self.queued[0] if self.queued and self.viewing is None else None
        cores = self.machine.logical_cores if self.machine is not None else None
        self.query_one(SettingsPane).show(self.shown, self.live, queued, cores)

    def show_layer(self) -> None:
        """The layer list shows the layer of what is on screen (the session or a snapshot)."""
        self.query_one(LayerList).fill(self.shown.config.batch, self.shown.config.layer)

    def refresh_panes(self) -> None:
        self.show_layer()
        self.show_settings()
        self.report()

    def lay_out(self, layout: str, height: int, key_rows: int) -> None:
        """Give the rows out for `layout`; the compact layout shows one chart."""
        self.layout_name = layout
        if layout == "small":
            return
        settings = self.query_one(SettingsPane)
        self.query_one("#top").styles.height = top_rows(
            layout, height, key_rows, settings.rows_needed + 2
        )
        self._show_charts()

    def _show_charts(self) -> None:
        charts = self.charts()
        shown = charts_shown(self.layout_name, len(charts), self.chart_index, self.roofline)
        for chart, visible in zip(charts, shown, strict=True):
            chart.display = visible
        self.query_one("#charts").set_class(self.roofline and self.layout_name != "compact",
                                            "-roofline")  # fmt: skip

    # -- keys -------------------------------------------------------------------
    def key_items(self, compact: bool) -> tuple[list[KeyItem], list[KeyItem]]:
        return profile_keys(self.viewing is not None, compact)

    def help_keys(self) -> list[tuple[str, str]]:
        keys = binding_help(self.BINDINGS, KEY_HELP)
        return [("↑ ↓", "choose a layer (layer list); scroll elsewhere"), *keys]

    def help_sections(self) -> list[tuple[str, list[tuple[str, str]], int]]:
        return [("Columns of the runs table", HELP_COLUMNS, 18), ("Charts", HELP_CHARTS, 16)]

    def take_focus(self) -> None:
        self.query_one(LayerList).focus()
        self.redraw(force=True)

    def check_action(self, action: str, parameters) -> bool | None:
        if action == "next_chart":
            return self.layout_name == "compact"
        return super().check_action(action, parameters)

    def _editable(self) -> bool:
        if self.viewing is not None:
            self.notify(
                "this is a saved snapshot (read-only); press l to go back to live",
                severity="warning",
            )
            return False
        return True

    def _changed(self) -> None:
        """The session's configuration changed: live mode runs the new one from the next run.

        Only the settings pane is drawn now, so the key shows at once; the charts follow at
        the next redraw (a chart frame costs tens of milliseconds).
        """
        self.sync_live()
        self.refresh_panes()

    def action_run_once(self) -> None:
        if not self._editable():
            return
        if self.live:
            self.notify("live mode is already running this configuration", timeout=3)
            return
        if self.session.not_applicable:
            self.notify(self.session.not_applicable, title="not applicable", severity="warning")
            return
        self.engine.start().submit(self.session.config)
        self.queued.append(self.session.config)
        self.show_settings()
        self.report()

    def action_toggle_live(self) -> None:
        if self._editable():
            self.engine.start()
            self.live = not self.live
            if self.live and self.session.not_applicable:
                self.notify(
                    f"live mode waits for a valid combination: {self.session.not_applicable}",
                    severity="warning",
                )
            else:
                self.notify(
                    "live mode on: the selected configuration runs again and again"
                    if self.live
                    else "live mode off",
                    timeout=3,
                )
            self._changed()

    def action_cancel(self) -> None:
        """esc stops the run, live mode and the sweep."""
        engine = self.engine.engine
        if engine is not None and self.busy:
            self.live = False
            self.sweep_left = []
            self.queued = []
            engine.set_live(None)  # first, so the cancelled run is the last one
            engine.cancel(drop_queued=True)
            self.notify("cancelled", timeout=2)
            self._changed()
        else:
            self.notify("nothing is running on this tab", timeout=2)

    def action_cycle(self, what: str, step: int) -> None:
        if self._editable():
            self.session.cycle(what, step)
            self._changed()

    def action_workers(self, step: int) -> None:
        if self._editable():
            self.session.step_workers(step)
            self._changed()

    def action_batch(self, step: int) -> None:
        if self._editable():
            self.session.step_batch(step)
            self._changed()

    def action_sweep(self) -> None:
        """Run the current layer and strategy at 1, 2, ... workers (up to the core count)."""
        if not self._editable():
            return
        engine = self.engine.start()
        top = self.session.max_workers
        cfgs = [replace(self.session.config, workers=w) for w in range(1, top + 1)]
        cfgs = [c for c in cfgs if not c.not_applicable_reason()]
        if not cfgs:
            self.notify("no worker count is applicable for this combination", severity="warning")
            return
        if self.live:
            self.live = False
            self.sync_live()
        for cfg in cfgs:
            engine.submit(cfg)
        self.sweep_left = list(cfgs)
        self.notify(
            f"worker sweep: {len(cfgs)} runs ({', '.join(str(c.workers) for c in cfgs)} "
            "workers); esc stops it",
            timeout=4,
        )
        self.refresh_panes()

    def action_repeat(self, step: int) -> None:
        """Step the timeline to the previous / next repeat of its run."""
        self.shown.step_repeat(step)
        self.query_one(TimelineChart).update_from(self.shown)
        self.show_pick()

    def action_next_chart(self) -> None:
        self.chart_index = (self.chart_index + 1) % len(self.charts())
        self.roofline = self.chart_index == len(self.charts()) - 1
        self.query_one(RooflineChart).look_again()
        self._show_charts()
        self.redraw(force=True)

    def action_roofline(self) -> None:
        self.roofline = not self.roofline
        self.query_one(RooflineChart).look_again()
        self.chart_index = len(self.charts()) - 1 if self.roofline else 0
        self._show_charts()
        self.redraw(force=True)

    @on(LayerList.Chosen)
    def layer_chosen(self, event: LayerList.Chosen) -> None:
        """The only way the layer changes: a key or a click on the layer list."""
        taken = self._editable()
        self.query_one(LayerList).settled(event.layer, taken)
        if taken and event.layer != self.session.config.layer:
            self.session.set(layer=event.layer)
            self._changed()
        else:
            self.show_layer()

    @on(DataTable.RowHighlighted, "#runs")
    def run_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """Moving through the runs table shows that run on the timeline; the last row follows
        the newest run."""
        table = self.query_one(RunsTable)
        if not table.has_focus or event.row_key is None or event.row_key.value is None:
            return
        number = table.run_of(event.row_key.value)
        last = event.cursor_row >= table.row_count - 1
        self.shown.select_run(None if last else number)
        self.query_one(TimelineChart).update_from(self.shown)
        self.show_pick()
        self.show_conditions()

    # -- snapshots --------------------------------------------------------------
    def load_snapshot(self, path: Path, loaded=None) -> None:
        """View the snapshot at `path` read-only; `loaded`: the file already read."""
        from partui.tui.dashboard.snapshots import model_from_snapshot

        try:
            self.viewing = model_from_snapshot(path, self.session.max_workers, loaded)
        except Exception as exc:  # a bad file is a message, never a crash
            self.notify(str(exc), title="cannot open snapshot", severity="error", timeout=8)
            return
        self.live = False
        self.sync_live()
        self.notify(f"viewing {path} (read-only); l goes back to live", timeout=5)
        self.refresh_panes()
        self.redraw(force=True)  # another model: every chart and the table
        self.show_pick()

    def action_back_to_live(self) -> None:
        if self.viewing is not None:
            self.viewing = None
            self.notify("back to the live session", timeout=2)
            self.refresh_panes()
            self.redraw(force=True)
            self.show_pick()
