"""The partui dashboard: pick a layer and a strategy, watch what parallelism does to it.

The engine runs in a child process (profiles.stream.EngineProcess), so drawing
charts here never competes with the kernels for this interpreter's GIL. One event
path: a Textual worker thread reads the engine's events and posts them as a message
at most EVENTS_HZ times a second; the app folds them into the model; each chart and
the runs table redraw from the model on their own timers, only when what they show
moved and only while they are on screen.

An unexpected error that ends the app leaves its traceback in a log file (its path is
printed) and a non-zero exit code; a chart that fails to draw only says so in its pane.
"""

from __future__ import annotations

import time
from pathlib import Path

import psutil
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.css.query import NoMatches
from textual.message import Message
from textual.widgets import DataTable, Static, TabbedContent, TabPane

from partui.profiles.records.config import RunConfig
from partui.profiles.records.events import CpuSample
from partui.profiles.records.limits import default_workers
from partui.profiles.system.machine import MachineInfo
from partui.tui.dashboard.charts.cpu import CpuChart
from partui.tui.dashboard.charts.history import HistoryChart
from partui.tui.dashboard.charts.speedup import SpeedupChart
from partui.tui.dashboard.charts.worker_timeline import TimelineChart
from partui.tui.dashboard.keys import KeyBar, key_label, key_rows
from partui.tui.dashboard.layout import layout_for, too_small_message, top_rows
from partui.tui.dashboard.model import Model
from partui.tui.dashboard.tabs.lab import MemLabTab
from partui.tui.dashboard.tabs.train import TrainTab
from partui.tui.dashboard.widgets.header import MachineHeader
from partui.tui.dashboard.widgets.layer_list import LayerList
from partui.tui.dashboard.widgets.runs_table import RunsTable
from partui.tui.dashboard.widgets.settings import SettingsPane
from partui.tui.text.safe_text import printable

EVENTS_HZ = 5  # engine events reach the app at most this often, in one message
TABLE_MIN_INTERVAL_S = 2.0  # the runs table (its rendering costs more than a chart's)
STOP_GRACE_S = 3.0  # after SIGTERM / SIGHUP, the orderly exit gets this long


class EngineEvents(Message):
    """A batch of the engine's events, posted by the worker that reads them."""

    def __init__(self, events: list) -> None:
        super().__init__()
        self.events = events


class PartuiApp(App):
    CSS_PATH = "partui.tcss"
    TITLE = "partui"

    BINDINGS = [
        Binding("r", "run_once", "Run"),
        Binding("space", "toggle_live", "Live"),
        Binding("escape", "cancel", "Cancel"),
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
        Binding("s", "save", "Save"),
        Binding("x", "export", "Export"),
        Binding("o", "browser", "Snapshots"),
        Binding("m", "toggle_tab", "Lab"),
        Binding("n", "train_tab", "Train"),
        Binding("l", "back_to_live", "Back to live", show=False),
        Binding("c", "next_chart", "Next chart (compact layout)", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        snapshot_dir: Path,
        open_snapshot: Path | None = None,
        config: RunConfig | None = None,
        live: bool = False,
        engine_factory=None,
        live_loop: bool = True,
        machine: MachineInfo | None = None,
        train_factory=None,
    ):
        super().__init__()
        self._train_factory = train_factory  # how the train tab runs training (tests: a thread)
        self.snapshot_dir = snapshot_dir
        self.open_snapshot = open_snapshot
        self._engine_factory = engine_factory
        self.live_loop = live_loop  # tests drive ticks by hand
        self.engine = None
        self.session = Model(config or RunConfig("conv2"), max_workers=max(2, default_workers()))
        self.viewing: Model | None = None
        self.live = live  # the engine runs the session's configuration back to back
        self.compiling: str | None = None  # what the engine compiles now, if anything
        self.sweep_left: list[RunConfig] = []  # configurations of a sweep not finished yet
        self.queued: list[RunConfig] = []  # single runs (r) the engine has not started yet
        self._proc = psutil.Process()
        self._proc.cpu_percent(None)
        self.self_cpu: float | None = None
        # given: tests that need a fixed header; else read as the dashboard mounts
        self.machine = machine or MachineInfo()
        self._read_machine = machine is None
        self.crash_log: Path | None = None  # where the traceback of a fatal error went
        self.key_at = 0.0  # time.monotonic() of the last key press: charts wait a moment
        self._after_screenshot = None  # what to do once an export's screenshot is written
        self.layout_name = "full"  # layout.layout_for(): small, compact or full
        self.chart_index = 0  # the chart shown by the compact layout (c: the next one)

    # -- layout -------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="too-small")
        yield MachineHeader(id="machine")
        with TabbedContent(id="tabs"):
            with TabPane("profile", id="profile"):
                with Horizontal(id="top"):
                    with Vertical(id="left"):
                        yield LayerList(id="layers")
                        yield SettingsPane(id="settings")
                    with Grid(id="charts"):
                        yield TimelineChart(id="timeline")
                        yield CpuChart(id="cpu")
                        yield SpeedupChart(id="speedup")
                        yield HistoryChart(id="history")
                yield RunsTable(id="runs")
            with TabPane("lab", id="memlab"):
                yield MemLabTab(id="memlab-view")
            with TabPane("train", id="train"):
                yield TrainTab(runner_factory=self._train_factory, id="train-view")
        yield KeyBar(id="keys")

    def notify(self, message, *, title: str = "", markup: bool = False, **kw) -> None:
        """Messages carry paths, notes and errors from files: shown as text, never as markup."""
        super().notify(printable(message), title=printable(title), markup=markup, **kw)

    def charts(self) -> list:
        return [self.query_one(f"#{name}") for name in ("timeline", "cpu", "speedup", "history")]

    @property
    def shown(self) -> Model:
        return self.viewing or self.session

    def on_mount(self) -> None:
        from partui.profiles.store.baselines import BaselineBook
        from partui.profiles.system.machine import host_info

        if self._read_machine:
            # the BLAS part imports numpy (most of a second on a busy machine): it follows
            # the first frame, on this thread (a read beside an import on another thread
            # deadlocked before threadpoolctl 3.7, the floor in pyproject.toml)
            self.machine = host_info()
            self.call_after_refresh(self.read_blas_info)
        self.session.book = BaselineBook(machine=self.machine)
        if self.session.book.problem:
            self.notify(self.session.book.problem, severity="warning")
        self.refresh_panes()
        self.apply_layout()
        self.query_one(LayerList).focus()
        if self.open_snapshot is not None:
            self.load_snapshot(self.open_snapshot)
        if self.live_loop:
            self.start_engine()
            self.read_events()
            for chart in self.charts():
                chart.start_timer()
            self.set_interval(TABLE_MIN_INTERVAL_S, self.redraw_table)
            self.set_interval(1.0, self.measure_self)
        if self.live:
            self.start_engine()
            self.sync_live()
        self._handle_stop_signals(True)

    def _handle_stop_signals(self, on: bool) -> None:
        """SIGTERM and SIGHUP (the terminal closed): stop the engine and its workers, then
        quit, as q does, rather than die and leave them."""
        import asyncio
        import signal

        try:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGHUP):
                if on:
                    loop.add_signal_handler(sig, self._stop_by_signal, sig)
                else:
                    loop.remove_signal_handler(sig)
        except (RuntimeError, ValueError, NotImplementedError):  # not the main thread
            pass

    def _stop_by_signal(self, signum: int) -> None:
        self.live = False
        self.close_engine()
        # The terminal may be gone (SIGHUP): Textual's shutdown can then block for ever on
        # its output queue to the dead terminal. The engine is closed, nothing is left to
        # save: if the orderly exit has not ended the process in a few seconds, end it.
        import os
        import threading

        timer = threading.Timer(STOP_GRACE_S, os._exit, (128 + signum,))
        timer.daemon = True
        timer.start()
        self.exit(return_code=128 + signum)

    def read_blas_info(self) -> None:
        self.machine = self.machine.with_blas()
        self.refresh_header()

    def start_engine(self) -> None:
        if self.engine is not None and not self.engine.alive:
            self.engine.close()  # it died (killed, crashed): end its orphans, start anew
            self.engine = None
        if self.engine is None:
            if self._engine_factory is None:
                from functools import partial

                from partui.profiles.service.engine import EngineProcess

                # first run after an install: kernels compile in the engine, before need
                self._engine_factory = partial(EngineProcess, compile_ahead=True)
            self.engine = self._engine_factory()
            self.engine.start()

    async def on_event(self, event) -> None:
        from textual import events

        if isinstance(event, events.Key):
            self.key_at = time.monotonic()
        await super().on_event(event)

    # -- the event path -------------------------------------------------------
    @work(thread=True, exclusive=True, group="engine-events", exit_on_error=False)
    def read_events(self) -> None:
        """Read the engine's events on a thread; post them at most EVENTS_HZ times a second."""
        from textual.worker import get_current_worker

        worker = get_current_worker()
        while not worker.is_cancelled:
            time.sleep(1.0 / EVENTS_HZ)
            engine = self.engine
            if engine is None:
                continue
            try:
                events = engine.drain(max_events=100_000)
            except Exception as exc:  # noqa: BLE001 - the engine closed under us
                if self.engine is engine:
                    self.call_from_thread(self.notify, f"engine events: {exc}", severity="error")
                continue
            if events:
                self.post_message(EngineEvents(events))

    def on_engine_events(self, message: EngineEvents) -> None:
        self.handle_events(message.events)

    def tick(self) -> None:
        """Drain the engine's events now and redraw everything (tests run without timers)."""
        if self.engine is None:
            return
        events = self.engine.drain()
        if events:
            self.handle_events(events)

    @property
    def run_pending(self) -> bool:
        """A run is going or asked for (r, a sweep): the header's "running"."""
        return self.session.running is not None or bool(self.sweep_left) or bool(self.queued)

    @property
    def busy(self) -> bool:
        """A run is going, queued, or due (live mode)."""
        return self.run_pending or self.live

    def handle_events(self, events) -> None:
        from partui.profiles.records.events import (
            Compiling,
            RunCancelled,
            RunFailed,
            RunFinished,
            RunStarted,
        )

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
        # so its runs (several a second) do not redraw the pane; the header has its own timer
        if not self.live and (
            (self.session.running is None) != (running is None) or len(self.queued) != queued
        ):
            self.show_settings()
            self.refresh_header()  # its mode: running or idle
        cpu = self.query_one(CpuChart)
        if cpu.message and self.viewing is None and any(isinstance(ev, CpuSample) for ev in events):
            cpu.update_from(self.session)  # the first samples: lines at once
            self.refresh_header()
        for ev in events:
            if isinstance(ev, Compiling):
                self.show_compiling(ev)
            if isinstance(ev, RunFinished) and self.session.book.offer(ev.result):
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

    def show_compiling(self, ev) -> None:
        """The header says the engine compiles kernels (the first runs after an install)."""
        if not ev.done:
            self.compiling = (
                f"compiling kernels, first run only: {ev.layer} "
                f"({ev.left} layer{'s' if ev.left > 1 else ''} to go)"
            )
        else:
            self.compiling = None
            if ev.left == 0:
                self.notify("kernels compiled: later runs start at once", timeout=4)
        self.refresh_header()

    def sync_live(self) -> None:
        """Tell the engine what live mode should run now: the session's configuration, if valid."""
        if self.engine is not None:
            valid = self.live and not self.session.not_applicable
            self.engine.set_live(self.session.config if valid else None)

    def measure_self(self) -> None:
        self.self_cpu = self._proc.cpu_percent(None)
        self.refresh_header()

    def redraw(self, force: bool = False) -> None:
        """Redraw the profile tab now: the table and every chart (another model is shown,
        the tab came back, or a test wants the screen up to date)."""
        if self.query_one(TabbedContent).active != "profile":
            return
        self.redraw_table(force)
        self.show_settings()
        for chart in self.charts():
            chart.update_from(self.shown, force=force)

    def redraw_table(self, force: bool = False) -> None:
        """The runs table, when runs were added (its own timer: every TABLE_MIN_INTERVAL_S)."""
        if self.query_one(TabbedContent).active != "profile" and not force:
            return
        model = self.shown
        table = self.query_one(RunsTable)
        shown = (id(model), model.run_count, len(model.failures))
        if force or getattr(table, "_shown_runs", None) != shown:
            table._shown_runs = shown
            table.show(model)

    # -- sizes --------------------------------------------------------------
    def on_resize(self) -> None:
        self.apply_layout()
        self.call_after_refresh(self.apply_layout)  # once the screen has its new size too

    def apply_layout(self) -> None:
        """Fit the screen to the terminal: choose the layout and give the rows out."""
        width, height = self.size
        layout = layout_for(width, height)
        self.layout_name = layout
        main = self.screen_stack[0] if self.screen_stack else self.screen
        for name in ("small", "compact", "full"):
            main.set_class(layout == name, f"-{name}")
        too_small = self.query_one("#too-small", Static)
        message = too_small_message(width, height)
        if str(too_small.render()) != message:  # an update lays the screen out again
            too_small.update(message)
        keys = self.query_one(KeyBar)
        keys.styles.height = key_rows(width)
        if layout != "small":
            settings = self.query_one(SettingsPane)
            self.query_one("#top").styles.height = top_rows(
                layout, height, key_rows(width), settings.rows_needed + 2
            )
            for i, chart in enumerate(self.charts()):
                chart.display = layout != "compact" or i == self.chart_index % 4
        self.refresh_keys()
        self.refresh_header()

    def refresh_keys(self) -> None:
        tab = self.query_one(TabbedContent).active
        self.query_one(KeyBar).show(
            tab, self.viewing is not None, self.layout_name == "compact", key_rows(self.size.width)
        )

    def action_next_chart(self) -> None:
        self.chart_index = (self.chart_index + 1) % 4
        self.apply_layout()
        self.redraw(force=True)

    def check_action(self, action: str, parameters) -> bool | None:
        if action == "next_chart":
            return self.layout_name == "compact"
        return True

    @on(TabbedContent.TabActivated)
    def tab_shown(self) -> None:
        self.refresh_keys()
        self.call_after_refresh(self.refresh_keys)  # the tab's widget has focus by then

    @on(SettingsPane.Resized)
    def settings_resized(self) -> None:
        self.apply_layout()

    def refresh_header(self) -> None:
        last = self.session.cpu[-1] if self.session.cpu else None
        engine_cpu = last.engine_cpu if last is not None else None
        mode = "SNAPSHOT" if self.viewing else "LIVE" if self.live else "idle"
        if mode == "idle" and self.run_pending:
            mode = "running"
        if self.compiling:
            mode = f"{mode} | {self.compiling}"
        self.query_one(MachineHeader).show(
            self.machine,
            self.self_cpu,
            engine_cpu,
            mode,
            others=None if last is None else last.others_cpu,
            width=self.size.width,
        )

    def show_settings(self) -> None:
        queued = self.queued[0] if self.queued and self.viewing is None else None
        self.query_one(SettingsPane).show(self.shown, self.live, queued)

    def refresh_panes(self) -> None:
        self.show_layer()
        self.show_settings()
        self.refresh_header()
        self.refresh_keys()

    # -- actions ------------------------------------------------------------
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
        self.start_engine()
        self.engine.submit(self.session.config)
        self.queued.append(self.session.config)
        self.show_settings()
        self.refresh_header()

    def action_toggle_live(self) -> None:
        if self._editable():
            self.start_engine()
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
        """esc stops what the tab in view runs: the experiment, or the run, live mode and sweep."""
        if self.query_one(TabbedContent).active == "train":
            self.notify("g starts and stops training on this tab", timeout=3)
            return
        if self.query_one(TabbedContent).active == "memlab":
            memlab = self._memlab()
            if memlab is None or not memlab.cancel():
                self.notify("no experiment is running", timeout=2)
            return
        if self.engine is not None and self.busy:
            self.live = False
            self.sweep_left = []
            self.queued = []
            self.engine.set_live(None)  # first, so the cancelled run is the last one
            self.engine.cancel(drop_queued=True)
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

    def show_layer(self) -> None:
        """The layer list shows the layer of what is on screen (the session or a snapshot)."""
        self.query_one(LayerList).fill(self.shown.config.batch, self.shown.config.layer)

    def action_sweep(self) -> None:
        """Run the current layer and strategy at 1, 2, ... workers (up to the core count)."""
        if not self._editable():
            return
        self.start_engine()
        from dataclasses import replace

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
            self.engine.submit(cfg)
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

    @on(DataTable.RowHighlighted, "#runs")
    def run_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """Moving through the runs table shows that run on the timeline; the last row follows
        the newest run."""
        table = self.query_one(RunsTable)
        if not table.has_focus or event.row_key is None:
            return
        number = table.run_of(event.row_key.value)
        last = event.cursor_row >= table.row_count - 1
        self.shown.select_run(None if last else number)
        self.query_one(TimelineChart).update_from(self.shown)

    def action_toggle_tab(self) -> None:
        tabs = self.query_one(TabbedContent)
        tabs.active = "memlab" if tabs.active == "profile" else "profile"
        if tabs.active == "profile":
            self.query_one(LayerList).focus()
            self.redraw(force=True)
        else:
            self.query_one("#experiments").focus()

    def action_train_tab(self) -> None:
        self.query_one(TabbedContent).active = "train"
        self.query_one(TrainTab).focus()

    def action_help(self) -> None:
        from partui.tui.dashboard.screens.help import HelpScreen

        self.push_screen(HelpScreen(self.BINDINGS, self.snapshot_dir))

    def action_save(self) -> None:
        from partui.tui.dashboard.snapshots import save_session

        try:
            path = save_session(self.shown, self.machine, self.snapshot_dir, self._memlab_results())
        except OSError as exc:
            self.notify(f"could not save: {exc}", severity="error")
            return
        self.notify(f"snapshot saved: {path}", timeout=6)

    def action_export(self) -> None:
        from partui.tui.dashboard.snapshots import export_session

        try:
            paths = export_session(
                self, self.shown, self.machine, self.snapshot_dir, self._memlab_results()
            )
        except OSError as exc:
            self.notify(f"could not export: {exc}", severity="error")
            return
        self._after_screenshot = lambda: self.notify(
            "exported:\n" + "\n".join(str(p) for p in paths), timeout=8
        )

    def screenshot_without_toasts(self, path: Path) -> None:
        """Write the screen as SVG to `path` once the toasts over it are gone (next refresh)."""
        self.clear_notifications()

        def take() -> None:
            from partui.profiles.files.safe_files import write_text

            try:
                write_text(path, self.export_screenshot())
            except (OSError, ValueError) as exc:
                self.notify(f"could not save the screenshot: {exc}", severity="error")
                return
            done, self._after_screenshot = self._after_screenshot, None
            if done is not None:
                done()

        self.call_after_refresh(take)

    def action_browser(self) -> None:
        from partui.tui.dashboard.screens.browser import SnapshotBrowser

        self.push_screen(SnapshotBrowser(self.snapshot_dir), self._browser_done)

    def _browser_done(self, path) -> None:
        if path:
            self.load_snapshot(Path(path))

    def load_snapshot(self, path: Path) -> None:
        from partui.tui.dashboard.snapshots import model_from_snapshot

        try:
            self.viewing = model_from_snapshot(path, self.session.max_workers)
        except Exception as exc:  # a bad file is a message, never a crash
            self.notify(str(exc), title="cannot open snapshot", severity="error", timeout=8)
            return
        self.live = False
        self.sync_live()
        self.notify(f"viewing {path} (read-only); l goes back to live", timeout=5)
        self.refresh_panes()
        self.redraw(force=True)  # another model: every chart and the table

    def action_back_to_live(self) -> None:
        if self.viewing is not None:
            self.viewing = None
            self.notify("back to the live session", timeout=2)
            self.refresh_panes()
            self.redraw(force=True)

    def _memlab_results(self) -> list:
        memlab = self._memlab()
        return list(memlab.results) if memlab is not None and self.viewing is None else []

    def _memlab(self):
        try:
            return self.query_one(MemLabTab)
        except NoMatches:  # not mounted yet, or already gone at shutdown
            return None

    def get_system_commands(self, screen):
        yield from super().get_system_commands(screen)
        for binding in self.BINDINGS:
            if binding.action in ("quit",):
                continue
            yield SystemCommand(
                binding.description,
                f"key: {key_label(binding.key)}",
                lambda a=binding.action: self.run_action(a),
            )

    # -- errors and shutdown --------------------------------------------------
    def _handle_exception(self, error: Exception) -> None:
        """An unexpected error ends the app: keep its traceback in a log file first."""
        self.crash_log = write_crash_log(error, self.snapshot_dir)
        super()._handle_exception(error)

    def _print_error_renderables(self) -> None:
        from partui.tui.text.debug import debug_enabled

        if self.crash_log is None or debug_enabled():  # not saved, or asked for: show it
            super()._print_error_renderables()
        else:
            self._exit_renderables.clear()

    async def action_quit(self) -> None:
        self.live = False
        self.close_engine()
        self.exit()

    def close_engine(self) -> None:
        memlab = self._memlab()
        if memlab is not None:
            memlab.cancel()
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        try:
            self.query_one(TrainTab).stop_all()
        except NoMatches:
            pass

    def on_unmount(self) -> None:
        self._handle_stop_signals(False)
        self.close_engine()


def write_crash_log(error: BaseException, folder: Path) -> Path | None:
    """The traceback of `error` in partui-crash-<time>.log beside the snapshots (or in the
    temporary folder); None when neither can be written."""
    import tempfile
    import traceback

    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    name = time.strftime("partui-crash-%Y%m%d-%H%M%S.log")
    for where in (folder, Path(tempfile.gettempdir())):
        try:
            where.mkdir(parents=True, exist_ok=True)
            path = where / name
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            continue
    return None
