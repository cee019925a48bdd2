"""The help screen: what partui shows, the keys of the tab in view, the columns, the charts."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from partui.tui.dashboard.keys import binding_help
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


APP_KEY_HELP = {  # the keys of every tab, said in full
    "save": "save the session as a snapshot",
    "export": "snapshot + Perfetto trace + CSV + SVG screenshot",
    "browser": "saved snapshots: open one read-only, mark two (A, B) and compare",
    "toggle_tab": "switch between the profile tab and the lab",
    "train_tab": "the train tab",
    "help": "this help: the keys of the tab in view",
    "quit": "quit (the engine, training and experiments stop)",
}
Rows = list[tuple[str, str]]


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 100; max-width: 95%; height: 90%;
        border: round $accent; background: $surface; padding: 0 1; }
    """

    def __init__(
        self,
        tab: str,
        tab_keys: Rows,
        app_keys: Rows,
        sections: list[tuple[str, Rows, int]],
        snapshot_dir: Path,
    ):
        """`tab`: the tab in view, its keys and its own sections; `app_keys`: every tab's."""
        super().__init__()
        self._tab, self._tab_keys, self._app_keys = tab, tab_keys, app_keys
        self._sections = sections
        self._snapshot_dir = snapshot_dir

    @classmethod
    def of(cls, tab, app_bindings: list, snapshot_dir: Path) -> HelpScreen:
        """The help of `tab` (a TabUnit) and of the app's keys, which hold on every tab."""
        own = tab.help_keys()
        taken = {key for key, _ in own}  # a key the tab binds does the tab's thing there
        every = [row for row in binding_help(app_bindings, APP_KEY_HELP) if row[0] not in taken]
        return cls(tab.title, own, every, tab.help_sections(), snapshot_dir)

    def compose(self) -> ComposeResult:
        text = Text(HELP_INTRO)
        room = min(100, int(self.app.size.width * 0.95)) - 5  # border, padding, scrollbar
        _section(text, f"Keys of the {self._tab} tab", self._tab_keys, 8, room)
        every = [
            *self._app_keys,
            ("tab", "next pane"),
            ("^p", "command palette (every action, by name)"),
        ]
        _section(text, "Keys on every tab", every, 8, room)
        for title, rows, width in self._sections:
            _section(text, title, rows, width, room)
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
