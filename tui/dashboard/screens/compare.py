"""Two snapshots side by side."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import ScrollableContainer
from textual.screen import ModalScreen
from textual.widgets import Static

from partui.tui.text.safe_text import printable


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
