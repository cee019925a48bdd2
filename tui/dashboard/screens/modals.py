"""Modal screens: help, the snapshot browser, comparing two snapshots."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import ScrollableContainer, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from partui.tui.text.safe_text import printable

HELP_INTRO = (
    "partui runs one layer of a small CNN under one way of splitting its work, and shows "
    "what it does on this machine: which worker ran when, how busy each core was, the "
    "speedup against the honest baseline (the best single-worker time of any strategy "
    "for that layer and batch, measured here), and whether the answer is still right.\n\n"
    "The engine runs in a child process, so drawing these charts does not steal the "
    "interpreter (GIL) from the kernels. The header shows what the dashboard itself "
    "costs in CPU.\n"
)


KEY_HELP = {  # what each key does, said in full (the key bar and palette use short names)
    "run_once": "run the configuration once: warm-ups, then timed repeats, checked",
    "toggle_live": "live mode: run it again and again; a change applies from the next run",
    "cancel": "stop what this tab runs: the run, live mode and sweep on the profile tab, "
    "the experiment on the lab",
    "cycle('strategy', 1)": "next strategy (how the work is cut)",
    "cycle('strategy', -1)": "previous strategy",
    "cycle('kernel', 1)": "next kernel: loops or vectorized",
    "cycle('executor', 1)": "next executor: inline, threads, processes, blas",
    "cycle('executor', -1)": "previous executor",
    "workers(1)": "one worker more (= too)",
    "workers(-1)": "one worker less",
    "batch(1)": "double the batch",
    "batch(-1)": "halve the batch",
    "repeat(-1)": "one timed repeat less",
    "repeat(1)": "one timed repeat more",
    "sweep": "run the layer and strategy at 1, 2, ... workers up to the core count",
    "save": "save the session as a snapshot",
    "export": "snapshot + Perfetto trace + CSV + SVG screenshot",
    "browser": "saved snapshots: open one read-only, mark two (A, B) and compare",
    "toggle_tab": "switch between the profile tab and the lab",
    "back_to_live": "leave a snapshot, back to the live session",
    "next_chart": "compact layout (small terminal): show the next chart",
    "help": "this help",
    "quit": "quit (the engine and its workers stop)",
}
HELP_COLUMNS = [
    ("ok", "the output matches the float64 reference within the tolerance (else FAIL)"),
    ("w", "workers: threads or processes (BLAS threads for the blas executor)"),
    ("median ms", "median time of the timed repeats (warm-ups not counted)"),
    ("min-max ms", "the spread: fastest and slowest repeat"),
    (
        "speedup",
        "against the honest baseline: the best single-worker median of any "
        "strategy for this layer, kernel and batch, measured on this machine (this "
        "session or the machine's baseline book); 1.00x = as fast as that",
    ),
    ("eff", "efficiency = speedup / workers; 100% = every worker fully useful"),
    (
        "on-CPU",
        "per worker, CPU time / busy time. 1.00 = it computed all the time it was "
        "busy; below 1 it waited: for the GIL, a lock, memory, or a core another "
        "program held",
    ),
    ("max err", "largest absolute difference from the float64 reference"),
    ("imbalance", "(partui run / show) busiest worker's busy time / the mean; 1.0 = even"),
    (
        "kern, exec, strat",
        "narrow tables abbreviate: vec = vectorized, thr = threads, "
        "proc = processes, chan = channel, spat = spatial",
    ),
]
HELP_CHARTS = [
    (
        "worker timeline",
        "one lane per worker, █ where it ran a task, ms since the run "
        "started: gaps are idle workers, a long lane is the straggler",
    ),
    ("CPU per core", "% busy of each logical core, from the engine's sampler, the last 30 s"),
    (
        "speedup",
        "speedup against workers: the ideal line, the measured points and an "
        "Amdahl fit (s = serial fraction, its ceiling 1/s)",
    ),
    ("run times", "every timed repeat, newest on the right: the noise you are reading"),
]


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 100; max-width: 95%; height: 90%;
        border: round $accent; background: $surface; padding: 0 1; }
    """

    def __init__(self, bindings, snapshot_dir: Path):
        super().__init__()
        self._keys = bindings
        self._snapshot_dir = snapshot_dir

    def compose(self) -> ComposeResult:
        from partui.tui.dashboard.keys import key_label

        text = Text(HELP_INTRO)
        keys = [(key_label(b.key), KEY_HELP.get(b.action, b.description)) for b in self._keys]
        keys += [
            ("↑ ↓", "choose a layer (layer list); scroll elsewhere"),
            ("enter", "lab: run the experiment under the cursor"),
            ("tab", "next pane"),
            ("^p", "command palette (every action, by name)"),
        ]
        room = min(100, int(self.app.size.width * 0.95)) - 5  # border, padding, scrollbar
        _section(text, "Keys", keys, 8, room)
        _section(text, "Columns of the runs table", HELP_COLUMNS, 18, room)
        _section(text, "Charts", HELP_CHARTS, 16, room)
        text.append(
            f"\nSnapshots are saved in {printable(self._snapshot_dir)}\n"
            "(change with --snapshot-dir DIR or PARTUI_SNAPSHOT_DIR).\n"
        )
        text.append("\nescape closes this help.", "dim")
        with VerticalScroll():
            yield Static(text)


def _section(text: Text, title: str, rows: list[tuple[str, str]], width: int, room: int) -> None:
    """A titled list of (name, explanation): names in one column, explanations wrapped beside."""
    import textwrap

    text.append(f"\n{title}\n", "bold")
    indent = " " * (2 + width)
    for name, what in rows:
        text.append(f"  {name:<{width}}", "bold cyan")
        lines = textwrap.wrap(what, max(20, room - len(indent)))
        text.append(lines[0] + "\n" + "".join(f"{indent}{line}\n" for line in lines[1:]))


class SnapshotBrowser(ModalScreen):
    """Saved snapshots, newest first: enter opens one read-only, space marks two, c compares
    them."""

    BINDINGS = [
        Binding("escape,q", "dismiss_none", "Close"),
        Binding("enter", "open", "Open"),
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare marked"),
    ]
    DEFAULT_CSS = """
    SnapshotBrowser { align: center middle; }
    SnapshotBrowser > Vertical { width: 95%; height: 90%; border: round $accent;
        background: $surface; }
    SnapshotBrowser DataTable { height: 1fr; }
    SnapshotBrowser #browser-help { height: auto; padding: 0 1; }
    """

    def __init__(self, folder: Path):
        super().__init__()
        self.folder = folder
        self.summaries: list = []
        self.marked: list[Path] = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(
                Text(
                    printable(
                        f"snapshots in {self.folder}   enter: open read-only   "
                        "space: mark   c: compare the two marked   esc: close"
                    )
                ),
                id="browser-help",
            )
            yield DataTable(id="snapshots", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        from partui.profiles.store.snapshot import list_snapshots

        table = self.query_one(DataTable)
        table.add_columns("A/B", "file", "created", "runs", "machine", "configurations")
        found = list_snapshots(self.folder)
        # partui snapshots first; other JSON files (exports, foreign files) apart, greyed,
        # with the reason they cannot be opened
        self.summaries = [s for s in found if not s.error] + [s for s in found if s.error]
        for i, s in enumerate(self.summaries):
            if s.error:
                reason = printable(not_snapshot_reason(s))
                table.add_row(
                    "",
                    Text(printable(s.path.name), "dim"),
                    "",
                    "",
                    "",
                    Text(f"not a snapshot: {reason}", "dim italic"),
                    key=str(i),
                )
                continue
            configs = ", ".join(s.configurations[:3]) + (
                " ..." if len(s.configurations) > 3 else ""
            )
            cpu = " ".join(s.cpu_model.replace("(R)", "").replace("(TM)", "").split())
            machine = f"{cpu[:28]} ({s.logical_cores} cpus)"
            table.add_row(
                "",
                Text(printable(s.path.name)),
                Text(printable(s.created[:19].replace("T", " "))),
                str(s.runs),
                Text(printable(machine)),
                Text(printable(configs)),
                key=str(i),
            )
        if not self.summaries:
            self.query_one("#browser-help", Static).update(
                Text(
                    printable(
                        f"no snapshots in {self.folder} yet: press s on the dashboard to save one. "
                        "esc closes."
                    )
                )
            )
        table.focus()

    def _current(self):
        table = self.query_one(DataTable)
        if not self.summaries or table.cursor_row is None:
            return None
        return self.summaries[table.cursor_row]

    def action_dismiss_none(self) -> None:
        self.dismiss(None)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()  # enter on a row: the table takes the key before the screen's binding
        self.action_open()

    def action_open(self) -> None:
        s = self._current()
        if s is None:
            return
        if s.error:
            self.app.notify(s.error, title="cannot open", severity="error")
            return
        self.dismiss(str(s.path))

    def action_mark(self) -> None:
        """space marks the row under the cursor: the first mark is A, the second B."""
        s = self._current()
        if s is None or s.error:
            return
        if s.path in self.marked:
            self.marked.remove(s.path)
        else:
            self.marked.append(s.path)
            del self.marked[:-2]  # a third mark lets the oldest go
        table = self.query_one(DataTable)
        for i, other in enumerate(self.summaries):
            mark = "AB"[self.marked.index(other.path)] if other.path in self.marked else ""
            table.update_cell_at((i, 0), Text(mark, "bold yellow"))

    def action_compare(self) -> None:
        if len(self.marked) != 2:
            self.app.notify("mark two snapshots with space first (A, then B)", severity="warning")
            return
        self.app.push_screen(CompareScreen(*self.marked))


def not_snapshot_reason(summary) -> str:
    """Why a JSON file in the snapshot folder is not listed as a snapshot, in a few words."""
    name = summary.path.name
    if name.endswith(".trace.json"):
        return "a Perfetto / Chrome trace export (open it in ui.perfetto.dev)"
    error = summary.error or "it does not load"
    return error.removeprefix(f"{summary.path}: ")


class CompareScreen(ModalScreen):
    """Two snapshots side by side (the same report as `partui compare A B`)."""

    BINDINGS = [Binding("escape,q", "dismiss", "Close")]
    DEFAULT_CSS = """
    CompareScreen { align: center middle; }
    CompareScreen > ScrollableContainer { width: 95%; height: 90%; border: round $accent;
        background: $surface; padding: 0 1; }
    CompareScreen #compare-text { width: auto; }
    """

    def __init__(self, a: Path, b: Path):
        super().__init__()
        self.a, self.b = a, b

    def compose(self) -> ComposeResult:
        from partui.profiles.store.snapshot import SnapshotError, load
        from partui.tui.text.reports import compare_report

        try:
            text = (
                f"A = {self.a}\nB = {self.b}\n\n"
                + compare_report(load(self.a), load(self.b))
                + "\n\nesc closes"
            )
        except SnapshotError as exc:
            text = f"cannot compare: {exc}\n\nesc closes"
        with ScrollableContainer():  # wide reports scroll sideways instead of wrapping
            yield Static(Text(printable(text), no_wrap=True), id="compare-text")
