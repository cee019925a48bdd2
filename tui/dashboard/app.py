"""The partui dashboard: three tabs (profile, lab, train) under one header and one key bar.

The app composes the tabs, owns the profile engine's lifecycle and pumps its events to the
profile tab. The engine runs in a child process (profiles.service.engine), so drawing charts
here never competes with the kernels for this interpreter's GIL: a Textual worker thread
reads its events and posts them at most EVENTS_HZ times a second. Each tab owns its keys,
its `esc`, its section of help and reports what it runs; the header reads that, and the
CPU of every process partui started, from one activity model.

An unexpected error that ends the app leaves its traceback in a log file (its path is
printed) and a non-zero exit code; a chart that fails to draw only says so in its pane.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Static, TabbedContent, TabPane

from partui.profiles.records.config import RunConfig
from partui.profiles.records.events import Compiling
from partui.profiles.records.limits import default_workers
from partui.profiles.store.snapshot import Snapshot
from partui.profiles.system import heap
from partui.profiles.system.machine import MachineInfo
from partui.tui.dashboard import session_files as files
from partui.tui.dashboard.activity import Activity, ProcessCensus
from partui.tui.dashboard.crash import write_crash_log
from partui.tui.dashboard.engine_link import EngineLink
from partui.tui.dashboard.keys import KeyBar, key_rows, palette_commands
from partui.tui.dashboard.layout import layout_for, too_small_message
from partui.tui.dashboard.messages import EngineEvents, TabStatus
from partui.tui.dashboard.model import Model
from partui.tui.dashboard.stopping import StopWatch, terminal_fd
from partui.tui.dashboard.tabs.base import TabUnit
from partui.tui.dashboard.tabs.lab import MemLabTab
from partui.tui.dashboard.tabs.profile import ProfileTab
from partui.tui.dashboard.tabs.train import TrainTab
from partui.tui.dashboard.widgets.header import MachineHeader
from partui.tui.dashboard.widgets.settings import SettingsPane
from partui.tui.text.safe_text import printable

EVENTS_HZ = 5  # engine events reach the app at most this often, in one message


class PartuiApp(App):
    CSS_PATH = "partui.tcss"
    TITLE = "partui"

    BINDINGS = [  # every tab's; each tab binds its own
        Binding("s", "save", "Save"),
        Binding("x", "export", "Export"),
        Binding("o", "browser", "Snapshots"),
        Binding("m", "toggle_tab", "Lab / profile"),
        Binding("n", "train_tab", "Train"),
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
        lab_factory=None,
    ):
        super().__init__()
        # SIGTERM, SIGHUP or SIGINT that came before the event loop handled them (noted by the
        # command line from before the terminal is taken over): acted on at mount
        self.early_signals: list[int] = []
        self.events_handled = threading.Event()  # the last batch posted was handled (read_events)
        self.events_handled.set()
        self.stop_watch: StopWatch | None = None
        self.snapshot_dir = snapshot_dir
        self.open_snapshot = open_snapshot
        # the snapshot at open_snapshot, when the command line has read it already
        self.opened: Snapshot | None = None
        self.live_loop = live_loop  # tests drive ticks by hand
        self.link = EngineLink(engine_factory)
        self.session = Model(config or RunConfig("conv2"), max_workers=max(2, default_workers()))
        self.profile = ProfileTab(self.session, self.link, live, lambda: self.key_at, id="view")
        self.lab = MemLabTab(runner_factory=lab_factory, id="memlab-view")
        self.train = TrainTab(
            runner_factory=train_factory,
            live_loop=live_loop,
            snapshot_dir=snapshot_dir,
            id="train-view",
        )
        self.activity = Activity()
        self.census: ProcessCensus | None = None  # started with the live loop
        # given: tests that need a fixed header; else read as the dashboard mounts
        self.machine = machine or MachineInfo()
        self._read_machine = machine is None
        self.crash_log: Path | None = None  # where the traceback of a fatal error went
        self.key_at = 0.0  # time.monotonic() of the last key press: charts wait a moment

    def compose(self) -> ComposeResult:
        yield Static(id="too-small")
        yield MachineHeader(id="machine")
        with TabbedContent(id="tabs"):
            for tab in (self.profile, self.lab, self.train):
                with TabPane(tab.title, id=tab.tab_id):
                    yield tab
        yield KeyBar(id="keys")

    def notify(self, message, *, title: str = "", markup: bool = False, **kw) -> None:
        """Messages carry paths, notes and errors from files: shown as text, never as markup."""
        super().notify(printable(message), title=printable(title), markup=markup, **kw)

    @property
    def tab(self) -> TabUnit:
        """The tab in view."""
        active = self.query_one(TabbedContent).active
        return {"memlab": self.lab, "train": self.train}.get(active, self.profile)

    def on_mount(self) -> None:
        from partui.profiles.store.baselines import BaselineBook
        from partui.profiles.system.conditions import read_conditions
        from partui.profiles.system.machine import host_info

        if self._read_machine:
            # the BLAS part imports numpy (most of a second on a busy machine): it follows
            # the first frame, on this thread (a read beside an import on another thread
            # deadlocked before threadpoolctl 3.7, the floor in pyproject.toml)
            self.machine = host_info()
            self.profile.conditions_now = read_conditions()  # a few small files in /proc, /sys
            self.call_after_refresh(self.read_blas_info)
        self.profile.use_machine(self.machine, BaselineBook(machine=self.machine))
        self.apply_layout()
        self.profile.take_focus()
        if self.open_snapshot is not None:
            self.profile.load_snapshot(self.open_snapshot, self.opened)
        if self.live_loop:
            self.start_engine()
            self.read_events()
            self.profile.start_timers()
            self.census = ProcessCensus()
            self.set_interval(1.0, self.measure_cpu)
            self.set_interval(heap.TRIM_EVERY_S, heap.trim)  # a long live session keeps its size
        if self.profile.live:
            self.start_engine()
            self.profile.sync_live()
            self.profile.report()
        self.stop_watch = StopWatch(
            self._stop_by_signal, None if self.is_headless else terminal_fd(), not self.is_headless
        )
        self.stop_watch.install()
        if self.early_signals:
            self.stop_watch.note(self.early_signals[0])

    def read_blas_info(self) -> None:
        self.machine = self.machine.with_blas()
        self.profile.machine = self.machine
        self.refresh_header()

    async def on_event(self, event) -> None:
        from textual import events

        if isinstance(event, events.Key):
            self.key_at = time.monotonic()
        await super().on_event(event)

    # -- the engine: its lifecycle and its events --------------------------------
    @property
    def engine(self):  # the profile engine, None until first needed
        return self.link.engine

    def start_engine(self) -> None:
        self.link.start()

    @work(thread=True, exclusive=True, group="engine-events", exit_on_error=False)
    def read_events(self) -> None:
        """Read the engine's events on a thread; post them at most EVENTS_HZ times a second,
        and the next batch only once the last was handled: while the screen is behind, the
        events wait in the engine's pipe, and a live engine waits for room before its next
        run (service.engine_child), instead of batches piling up here."""
        from textual.worker import get_current_worker

        worker = get_current_worker()
        while not worker.is_cancelled:
            time.sleep(1.0 / EVENTS_HZ)
            engine = self.link.engine
            if engine is None or not self.events_handled.is_set():
                continue
            try:
                events = engine.drain(max_events=100_000)
            except Exception as exc:  # noqa: BLE001 - the engine closed under us
                if self.link.engine is engine:
                    self.call_from_thread(self.notify, f"engine events: {exc}", severity="error")
                continue
            if events:
                self.events_handled.clear()
                self.post_message(EngineEvents(events))

    @on(EngineEvents)
    def engine_events(self, message: EngineEvents) -> None:
        try:
            if self.is_running:  # not a batch that came as the screen was taken down
                self.handle_events(message.events)
        finally:
            self.events_handled.set()

    def tick(self) -> None:
        """Drain the engine's events now (tests run without the event worker)."""
        if self.link.engine is not None:
            events = self.link.engine.drain()
            if events:
                self.handle_events(events)

    def handle_events(self, events: list) -> None:
        self.profile.fold(events)
        if any(isinstance(ev, Compiling) for ev in events):  # the first runs after an install
            self.activity.compiled([ev for ev in events if isinstance(ev, Compiling)][-1])
            self.refresh_header()

    def redraw(self, force: bool = False) -> None:
        self.profile.redraw(force)

    # -- header, keys, layout ------------------------------------------------------
    @on(TabStatus)
    def tab_status(self, message: TabStatus) -> None:
        self.activity.report(message.tab, message.mode)
        self.refresh_header()
        self.refresh_keys()

    def measure_cpu(self) -> None:
        if self.census is not None and self.is_running:  # its timer outlives the widgets
            self.activity.cpu = self.census.measure()
            self.refresh_header()

    def refresh_header(self) -> None:
        for tab in (self.profile, self.lab, self.train):  # each says what it runs now
            self.activity.report(tab.tab_id, tab.mode)
        self.query_one(MachineHeader).show(
            self.machine, self.activity.cpu, self.activity.mode, width=self.size.width
        )

    def refresh_keys(self) -> None:
        essential, extra = self.tab.key_items(self.profile.layout_name == "compact")
        self.query_one(KeyBar).show(essential, extra, key_rows(self.size.width))

    def on_resize(self) -> None:
        self.apply_layout()
        self.call_after_refresh(self.apply_layout)  # once the screen has its new size too

    @on(SettingsPane.Resized)
    def apply_layout(self) -> None:
        """Fit the screen to the terminal: choose the layout and give the rows out."""
        width, height = self.size
        layout = layout_for(width, height)
        main = self.screen_stack[0] if self.screen_stack else self.screen
        for name in ("small", "compact", "full"):
            main.set_class(layout == name, f"-{name}")
        too_small = self.query_one("#too-small", Static)
        message = too_small_message(width, height)
        if str(too_small.render()) != message:  # an update lays the screen out again
            too_small.update(message)
        self.query_one(KeyBar).styles.height = key_rows(width)
        self.profile.lay_out(layout, height, key_rows(width))
        self.refresh_keys()
        self.refresh_header()

    @on(TabbedContent.TabActivated)
    def tab_shown(self) -> None:
        if self.focused is None or self.tab not in self.focused.ancestors_with_self:
            self.tab.take_focus()  # its keys hold while focus is inside it
        self.refresh_keys()

    # -- keys of every tab ---------------------------------------------------------
    def action_toggle_tab(self) -> None:
        tabs = self.query_one(TabbedContent)
        tabs.active = "memlab" if tabs.active == "profile" else "profile"
        self.tab.take_focus()

    def action_train_tab(self) -> None:
        self.query_one(TabbedContent).active = "train"
        self.train.take_focus()

    def action_help(self) -> None:
        from partui.tui.dashboard.screens.help import HelpScreen

        self.push_screen(HelpScreen.of(self.tab, self.BINDINGS, self.snapshot_dir))

    def action_save(self) -> None:
        files.save(self, self.profile.shown, self.machine, self.snapshot_dir, self._lab_results())

    def action_export(self) -> None:
        files.export(self, self.profile.shown, self.machine, self.snapshot_dir, self._lab_results())

    def action_browser(self) -> None:
        from partui.tui.dashboard.screens.browser import SnapshotBrowser

        self.push_screen(SnapshotBrowser(self.snapshot_dir), self._browser_done)

    def _browser_done(self, path: str | None) -> None:
        if path:
            self.load_snapshot(Path(path))

    def load_snapshot(self, path: Path) -> None:
        self.query_one(TabbedContent).active = "profile"
        self.profile.load_snapshot(path)

    def _lab_results(self) -> list:
        return list(self.lab.results) if self.profile.viewing is None else []

    def get_system_commands(self, screen):
        yield from super().get_system_commands(screen)
        yield from palette_commands([(self.tab, self.tab.BINDINGS), (self, self.BINDINGS)])

    # -- errors and shutdown --------------------------------------------------------
    def panic(self, *renderables) -> None:
        """Textual's input thread fails (EIO) once its terminal has closed: that is a
        hang-up, not a crash (no crash log, exit 129)."""
        if self.stop_watch is not None and self.stop_watch.terminal_gone():
            self.stop_watch.note(signal.SIGHUP)
            return
        super().panic(*renderables)

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

    def _stop_by_signal(self, signum: int) -> None:
        """SIGTERM, SIGHUP or `kill -INT`: stop the engine and its workers, then quit, as q
        does."""
        self.close_engine()  # nothing is left to save
        self.exit(return_code=128 + signum)

    async def action_quit(self) -> None:
        self.close_engine()
        self.exit()

    def close_engine(self) -> None:
        """Stop everything partui runs: the lab's experiment, the engine, training."""
        self.profile.live = False
        self.lab.cancel()
        self.link.close()
        self.train.stop_all()

    def on_unmount(self) -> None:
        if self.stop_watch is not None:
            self.stop_watch.uninstall()
        self.close_engine()
