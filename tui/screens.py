"""Modal screens: help, the snapshot browser, comparing two snapshots."""
from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

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
        self._bindings = bindings
        self._snapshot_dir = snapshot_dir

    def compose(self) -> ComposeResult:
        text = Text(HELP_INTRO)
        text.append("\nKeys\n", "bold")
        for b in self._bindings:
            text.append(f"  {_key_label(b.key):<12}", "bold cyan")
            text.append(f"{b.description}\n")
        text.append("  ↑ ↓          choose a layer (layer list)\n", "")
        text.append("  tab          next pane;  ctrl+p  command palette (every action)\n")
        text.append(f"\nSnapshots are saved in {self._snapshot_dir}\n"
                    "(change with --snapshot-dir DIR or PARTUI_SNAPSHOT_DIR).\n")
        text.append("\nescape closes this help.", "dim")
        with VerticalScroll():
            yield Static(text)


def _key_label(key: str) -> str:
    names = {"question_mark": "?", "space": "space", "plus,equals_sign": "+",
             "minus": "-", "right_square_bracket": "]", "left_square_bracket": "[",
             "escape": "esc"}
    return names.get(key, key)
