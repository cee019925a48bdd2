"""The partui dashboard: pick a layer and a strategy, watch what parallelism does to it.

The engine runs in a child process (profiles.stream.EngineProcess), so drawing
charts here never competes with the kernels for this interpreter's GIL. A
timer drains the engine's events a few times a second, folds them into the
model, and redraws only the charts on the visible tab whose data changed.
"""
from __future__ import annotations

import time
from pathlib import Path

import psutil
from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.containers import Grid, Horizontal, Vertical
from textual.widgets import Footer, TabbedContent, TabPane

from partui.profiles.engine import RunConfig, default_workers

from .charts import Chart, CpuChart, HistoryChart, SpeedupChart, TimelineChart
from .memlab_tab import MemLabTab
from .model import Model, reason_for
from .panes import LayerList, MachineHeader, RunsTable, SettingsPane
from .safe_text import printable

TICK_S = 0.2  # how often events are drained and one stale chart is redrawn
CHART_MIN_INTERVAL_S = 1.0  # a chart redraws at most once a second (four charts: four frames a second)
TABLE_MIN_INTERVAL_S = 2.0  # the runs table (its rendering costs more than a chart's)


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
        Binding("s", "save", "Save"),
        Binding("x", "export", "Export"),
        Binding("o", "browser", "Snapshots"),
        Binding("m", "toggle_tab", "Lab"),
        Binding("l", "back_to_live", "Back to live", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, snapshot_dir: Path, open_snapshot: Path | None = None,
                 config: RunConfig | None = None, live: bool = False,
                 engine_factory=None, live_loop: bool = True, machine: dict | None = None):
        super().__init__()
        self.snapshot_dir = snapshot_dir
        self.open_snapshot = open_snapshot
        self._engine_factory = engine_factory
        self.live_loop = live_loop  # tests drive ticks by hand
        self.engine = None
        self.session = Model(config or RunConfig("conv2"), max_workers=max(2, default_workers()))
        self.viewing: Model | None = None
        self.live = live  # the engine runs the session's configuration back to back
        self.sweep_left: list[dict] = []  # configurations of a sweep not finished yet
        self._proc = psutil.Process()
        self._proc.cpu_percent(None)
        self.self_cpu: float | None = None
        self.machine: dict = machine or {}  # given: tests that need a fixed header

    # -- layout -------------------------------------------------------------
    def compose(self) -> ComposeResult:
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
        yield Footer()

    def notify(self, message, *, title: str = "", markup: bool = False, **kw) -> None:
        """Messages carry paths, notes and errors from files: shown as text, never as markup."""
        super().notify(printable(message), title=printable(title), markup=markup, **kw)

    @property
    def shown(self) -> Model:
        return self.viewing or self.session

    def on_mount(self) -> None:
        from partui.profiles.baselines import BaselineBook
        from partui.profiles.machine import info
        if not self.machine:
            self.machine = info()
        self.session.book = BaselineBook(machine=self.machine)
        if self.session.book.problem:
            self.notify(self.session.book.problem, severity="warning")
        self.refresh_panes()
        self.query_one(LayerList).focus()
        if self.open_snapshot is not None:
            self.load_snapshot(self.open_snapshot)
        if self.live_loop:
            self.start_engine()
            self.set_interval(TICK_S, self.tick)
            self.set_interval(1.0, self.measure_self)
        if self.live:
            self.start_engine()
            self.sync_live()

    def start_engine(self) -> None:
        if self.engine is None:
            if self._engine_factory is None:
                from partui.profiles.stream import EngineProcess
                self._engine_factory = EngineProcess
            self.engine = self._engine_factory()
            self.engine.start()

    # -- the loop -----------------------------------------------------------
    def tick(self) -> None:
        """Drain the engine's events and redraw what changed."""
        if self.engine is None:
            return
        events = self.engine.drain()
        if events:
            self.handle_events(events)
        self.redraw()

    @property
    def busy(self) -> bool:
        """A run is going, queued, or due (live mode)."""
        return self.session.running is not None or bool(self.sweep_left) or self.live

    def handle_events(self, events) -> None:
        from partui.profiles.events import RunCancelled, RunFailed, RunFinished
        self.session.apply(events)
        for ev in events:
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

    def sync_live(self) -> None:
        """Tell the engine what live mode should run now: the session's configuration, if valid."""
        if self.engine is not None:
            valid = self.live and not self.session.not_applicable
            self.engine.set_live(self.session.config if valid else None)

    def measure_self(self) -> None:
        self.self_cpu = self._proc.cpu_percent(None)
        self.refresh_header()

    def redraw(self, force: bool = False) -> None:
        """Redraw what moved on the visible tab: the table, and at most one chart per call.

        A chart frame costs tens of milliseconds; drawing the four in turn, one per tick,
        keeps each burst short, so a key pressed meanwhile waits for one chart, not four.
        """
        if self.query_one(TabbedContent).active != "profile":
            return
        model = self.shown
        now = time.monotonic()
        table = self.query_one(RunsTable)
        shown = (id(model), model.run_count, len(model.failures))
        if force or (getattr(table, "_shown_runs", None) != shown
                     and now - getattr(table, "_shown_at", 0.0) >= TABLE_MIN_INTERVAL_S):
            table._shown_runs, table._shown_at = shown, now
            table.show(model)
        self.query_one(SettingsPane).show(model, self.live)
        charts = sorted(self.query(Chart), key=lambda c: c.drawn_at)
        for chart in charts:
            if force:
                chart.update_from(model, force=True)
            elif now - chart.drawn_at >= CHART_MIN_INTERVAL_S and chart.update_from(model):
                return

    def refresh_header(self) -> None:
        engine_cpu = self.session.cpu[-1].engine_cpu if self.session.cpu else None
        mode = "SNAPSHOT" if self.viewing else ("LIVE" if self.live else "idle")
        self.query_one(MachineHeader).show(self.machine, self.self_cpu, engine_cpu, mode)

    def refresh_panes(self) -> None:
        self.show_layer()
        self.query_one(SettingsPane).show(self.shown, self.live)
        self.refresh_header()

    # -- actions ------------------------------------------------------------
    def _editable(self) -> bool:
        if self.viewing is not None:
            self.notify("this is a saved snapshot (read-only); press l to go back to live",
                        severity="warning")
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

    def action_toggle_live(self) -> None:
        if self._editable():
            self.start_engine()
            self.live = not self.live
            if self.live and self.session.not_applicable:
                self.notify(f"live mode waits for a valid combination: "
                            f"{self.session.not_applicable}", severity="warning")
            else:
                self.notify("live mode on: the selected configuration runs again and again"
                            if self.live else "live mode off", timeout=3)
            self._changed()

    def action_cancel(self) -> None:
        if self.engine is not None and self.busy:
            self.live = False
            self.sweep_left = []
            self.engine.set_live(None)  # first, so the cancelled run is the last one
            self.engine.cancel(drop_queued=True)
            self.notify("cancelled", timeout=2)
            self._changed()
        else:
            memlab = self._memlab()
            if memlab is not None and memlab.cancel():
                return

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
        if self._editable() and event.layer != self.session.config.layer:
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
        cfgs = [c for c in cfgs if not reason_for(c)]
        if not cfgs:
            self.notify("no worker count is applicable for this combination", severity="warning")
            return
        if self.live:
            self.live = False
            self.sync_live()
        for cfg in cfgs:
            self.engine.submit(cfg)
        self.sweep_left = [c.to_dict() for c in cfgs]
        self.notify(f"worker sweep: {len(cfgs)} runs ({', '.join(str(c.workers) for c in cfgs)} "
                    "workers); esc stops it", timeout=4)
        self.refresh_panes()

    def action_toggle_tab(self) -> None:
        tabs = self.query_one(TabbedContent)
        tabs.active = "memlab" if tabs.active == "profile" else "profile"
        if tabs.active == "profile":
            self.query_one(LayerList).focus()
            self.redraw(force=True)
        else:
            self.query_one("#experiments").focus()

    def action_help(self) -> None:
        from .screens import HelpScreen
        self.push_screen(HelpScreen(self.BINDINGS, self.snapshot_dir))

    def action_save(self) -> None:
        from .snapshots import save_session
        try:
            path = save_session(self.shown, self.machine, self.snapshot_dir, self._memlab_results())
        except OSError as exc:
            self.notify(f"could not save: {exc}", severity="error")
            return
        self.notify(f"snapshot saved: {path}", timeout=6)

    def action_export(self) -> None:
        from .snapshots import export_session
        try:
            paths = export_session(self, self.shown, self.machine, self.snapshot_dir,
                                   self._memlab_results())
        except OSError as exc:
            self.notify(f"could not export: {exc}", severity="error")
            return
        self.notify("exported:\n" + "\n".join(str(p) for p in paths), timeout=8)

    def action_browser(self) -> None:
        from .screens import SnapshotBrowser
        self.push_screen(SnapshotBrowser(self.snapshot_dir), self._browser_done)

    def _browser_done(self, path) -> None:
        if path:
            self.load_snapshot(Path(path))

    def load_snapshot(self, path: Path) -> None:
        from .snapshots import model_from_snapshot
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
            yield SystemCommand(binding.description, f"key: {binding.key}",
                                lambda a=binding.action: self.run_action(a))

    # -- shutdown -------------------------------------------------------------
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

    def on_unmount(self) -> None:
        self.close_engine()

