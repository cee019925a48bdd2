"""The snapshot browser: open one read-only, mark two and compare them."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from partui.tui.dashboard.screens.compare import CompareScreen
from partui.tui.text.safe_text import printable


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
            table.update_cell_at(Coordinate(i, 0), Text(mark, "bold yellow"))

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
