"""Modal screens: help, the snapshot browser, comparing two snapshots."""
from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from .safe_text import printable

HELP_INTRO = """\
partui runs one layer of a small CNN under one way of splitting its work, and shows
what it does on this machine: which worker ran when, how busy each core was, the
speedup against the honest baseline (the best single-worker time of any strategy
for that layer and batch, measured here), and whether the answer is still right.

The engine runs in a child process, so drawing these charts does not steal the
interpreter (GIL) from the kernels. The header shows what the dashboard itself
costs in CPU.
"""


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90; max-width: 95%; height: 90%;
        border: round $accent; background: $surface; padding: 0 1; }
    """

    def __init__(self, bindings, snapshot_dir: Path):
        super().__init__()
        self._keys = bindings
        self._snapshot_dir = snapshot_dir

    def compose(self) -> ComposeResult:
        text = Text(HELP_INTRO)
        text.append("\nKeys\n", "bold")
        for b in self._keys:
            text.append(f"  {_key_label(b.key):<12}", "bold cyan")
            text.append(f"{b.description}\n")
        text.append("  ↑ ↓          choose a layer (layer list)\n", "")
        text.append("  tab          next pane;  ctrl+p  command palette (every action)\n")
        text.append(f"\nSnapshots are saved in {printable(self._snapshot_dir)}\n"
                    "(change with --snapshot-dir DIR or PARTUI_SNAPSHOT_DIR).\n")
        text.append("\nescape closes this help.", "dim")
        with VerticalScroll():
            yield Static(text)


def _key_label(key: str) -> str:
    names = {"question_mark": "?", "space": "space", "plus,equals_sign": "+",
             "minus": "-", "right_square_bracket": "]", "left_square_bracket": "[",
             "escape": "esc"}
    return names.get(key, key)


class SnapshotBrowser(ModalScreen):
    """Saved snapshots, newest first: enter opens one read-only, space marks two, c compares them."""

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
            yield Static(Text(printable(f"snapshots in {self.folder}   enter: open read-only   "
                                        "space: mark   c: compare the two marked   esc: close")),
                         id="browser-help")
            yield DataTable(id="snapshots", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        from partui.profiles.snapshot import list_snapshots
        table = self.query_one(DataTable)
        table.add_columns("", "file", "created", "runs", "machine", "configurations")
        self.summaries = list_snapshots(self.folder)
        for i, s in enumerate(self.summaries):
            if s.error:
                table.add_row("", Text(printable(s.path.name)), "-", "-",
                              Text(printable(s.error), "red"), "-", key=str(i))
                continue
            configs = ", ".join(s.configurations[:3]) + (" ..." if len(s.configurations) > 3 else "")
            cpu = " ".join(s.cpu_model.replace("(R)", "").replace("(TM)", "").split())
            machine = f"{cpu[:28]} ({s.logical_cores} cpus)"
            table.add_row("", Text(printable(s.path.name)),
                          Text(printable(s.created[:19].replace("T", " "))), str(s.runs),
                          Text(printable(machine)), Text(printable(configs)), key=str(i))
        if not self.summaries:
            self.query_one("#browser-help", Static).update(Text(printable(
                f"no snapshots in {self.folder} yet: press s on the dashboard to save one. "
                "esc closes.")))
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
        s = self._current()
        if s is None or s.error:
            return
        table = self.query_one(DataTable)
        row = table.cursor_row
        if s.path in self.marked:
            self.marked.remove(s.path)
            table.update_cell_at((row, 0), "")
        else:
            self.marked.append(s.path)
            if len(self.marked) > 2:
                dropped = self.marked.pop(0)
                for i, other in enumerate(self.summaries):
                    if other.path == dropped:
                        table.update_cell_at((i, 0), "")
            table.update_cell_at((row, 0), Text("AB"[self.marked.index(s.path)], "bold yellow"))
            for i, other in enumerate(self.summaries):
                if other.path in self.marked:
                    table.update_cell_at((i, 0), Text("AB"[self.marked.index(other.path)],
                                                      "bold yellow"))

    def action_compare(self) -> None:
        if len(self.marked) != 2:
            self.app.notify("mark two snapshots with space first (A, then B)", severity="warning")
            return
        self.app.push_screen(CompareScreen(*self.marked))


class CompareScreen(ModalScreen):
    """Two snapshots side by side (the same report as `partui compare A B`)."""

    BINDINGS = [Binding("escape,q", "dismiss", "Close")]
    DEFAULT_CSS = """
    CompareScreen { align: center middle; }
    CompareScreen > VerticalScroll { width: 95%; height: 90%; border: round $accent;
        background: $surface; padding: 0 1; }
    """

    def __init__(self, a: Path, b: Path):
        super().__init__()
        self.a, self.b = a, b

    def compose(self) -> ComposeResult:
        from partui.profiles.snapshot import SnapshotError, load

        from .commands.profiling import compare_report
        try:
            text = (f"A = {self.a}\nB = {self.b}\n\n"
                    + compare_report(load(self.a), load(self.b)) + "\n\nesc closes")
        except SnapshotError as exc:
            text = f"cannot compare: {exc}\n\nesc closes"
        with VerticalScroll():
            yield Static(Text(printable(text)), id="compare-text")
