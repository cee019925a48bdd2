"""Keys as people type them, and the key bar: the essential keys of the visible tab first.

The bar is drawn here rather than by Textual's Footer so that it can say what a key does
on the tab in view (esc stops the run on one tab, the experiment on the other), put the
essential keys first at every width and shorten its words on purpose instead of cutting them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import SystemCommand
from textual.binding import Binding
from textual.widgets import Static

_NAMES = {
    "question_mark": "?",
    "plus": "+",
    "equals_sign": "=",
    "minus": "-",
    "right_square_bracket": "]",
    "left_square_bracket": "[",
    "escape": "esc",
    "space": "space",
    "up": "↑",
    "down": "↓",
    "enter": "enter",
    "tab": "tab",
    "ctrl+p": "^p",
    "comma": ",",
    "left": "←",
    "right": "→",
    "full_stop": ".",
}


def key_label(keys: str) -> str:
    """A binding's keys as typed: "plus,equals_sign" -> "+", "left_square_bracket" -> "["."""
    first = keys.split(",")[0].strip()
    return _NAMES.get(first, first)


def binding_help(bindings: list, words: dict[str, str]) -> list[tuple[str, str]]:
    """(key as typed, what it does in full) of each Binding; `words` by action, else the
    binding's own description."""
    return [
        (key_label(b.key), words.get(b.action, b.description))
        for b in bindings
        if isinstance(b, Binding)
    ]


def palette_commands(owners: list[tuple[Any, list]]) -> Iterator[SystemCommand]:
    """A command palette entry for each binding of each (owner, its bindings): the
    binding's words, its key as typed; choosing it runs the action on its owner."""
    for owner, bindings in owners:
        for binding in bindings:
            if isinstance(binding, Binding) and binding.action != "quit":
                yield SystemCommand(
                    binding.description,
                    f"key: {key_label(binding.key)}",
                    lambda o=owner, a=binding.action: o.run_action(a),
                )


@dataclass(frozen=True)
class KeyItem:
    key: str  # as typed
    words: str  # what it does here
    short: str  # the same in fewer letters, for narrow terminals
    action: str = ""  # the app action a click runs


def _item(key, words, short=None, action=""):
    return KeyItem(key, words, short or words, action)


def profile_keys(viewing: bool, compact: bool) -> tuple[list[KeyItem], list[KeyItem]]:
    """(essential, extra) keys of the profile tab."""
    essential = [
        _item("r", "run", "run", "run_once"),
        _item("space", "live", "live", "toggle_live"),
        _item("esc", "stop run", "stop", "cancel"),
        _item("t", "strategy", "strat", "cycle('strategy', 1)"),
        _item("e", "executor", "exec", "cycle('executor', 1)"),
        _item("+/-", "workers", "wkrs"),
        _item("s", "save", "save", "save"),
        _item("x", "export", "export", "export"),
        _item("o", "snapshots", "open", "browser"),
        _item("m", "lab", "lab", "toggle_tab"),
        _item("?", "help", "help", "help"),
        _item("q", "quit", "quit", "quit"),
    ]
    if viewing:
        essential.insert(0, _item("l", "back to live", "live view", "back_to_live"))
    extra = [
        _item("k", "kernel", "kernel", "cycle('kernel', 1)"),
        _item("[/]", "batch", "batch"),
        _item("w", "sweep", "sweep", "sweep"),
        _item("f", "roofline", "roof", "roofline"),
        _item("^p", "palette", "palette", "command_palette"),
    ]
    if viewing:  # replaying a saved run: the repeat shown (tabs/replay.py)
        extra[:0] = [_item("←/→", "repeat", "rep"), _item("home/end", "fastest/slowest")]
    if compact:
        extra.insert(0, _item("c", "next chart", "chart", "next_chart"))
    return essential, extra


def train_keys() -> tuple[list[KeyItem], list[KeyItem]]:
    essential = [
        _item("g", "start/stop", "g/stop", "start_stop"),
        _item("esc", "stop training", "stop", "cancel"),
        _item("u", "update rule", "update", "cycle('update')"),
        _item("c", "combine", "comb", "cycle('combine')"),
        _item("e", "executor", "exec", "cycle('executor')"),
        _item("+/-", "workers", "wkrs"),
        _item("s", "save", "save", "save"),
        _item("x", "export", "export", "export"),
        _item("m", "profile tab", "profile", "toggle_tab"),
        _item("?", "help", "help", "help"),
        _item("q", "quit", "quit", "quit"),
    ]
    extra = [
        _item("[/]", "batch", "batch"),
        _item(",/.", "learning rate", "lr"),
        _item("v", "seconds/images", "x axis", "axis"),
        _item("o", "snapshots", "open", "browser"),
        _item("^p", "palette", "palette", "command_palette"),
    ]
    return essential, extra


def memlab_keys() -> tuple[list[KeyItem], list[KeyItem]]:
    essential = [
        _item("enter", "run experiment", "run"),
        _item("esc", "stop experiment", "stop", "cancel"),
        _item("m", "profile tab", "profile", "toggle_tab"),
        _item("s", "save", "save", "save"),
        _item("x", "export", "export", "export"),
        _item("o", "snapshots", "open", "browser"),
        _item("?", "help", "help", "help"),
        _item("q", "quit", "quit", "quit"),
    ]
    return essential, [
        _item("tab", "next pane", "pane"),
        _item("^p", "palette", "palette", "command_palette"),
    ]


def _cell(item: KeyItem, short: bool) -> Text:
    return Text.assemble(
        (f" {item.key} ", "bold reverse"), " ", item.short if short else item.words
    )


def key_lines(essential: list[KeyItem], extra: list[KeyItem], width: int, rows: int) -> list[Text]:
    """The keys laid out on `rows` lines of `width` cells: every essential key, whole words.

    Long words first, then the short ones; extra keys only where room is left. If even the
    short words do not fit, the last essential keys are left out whole (never cut).
    """
    for short in (False, True):
        lines = _flow(essential, width, rows, short)
        if lines is not None:
            break
    else:
        lines = _flow(essential, width, rows, True, drop=True)
    for item in extra:  # in order, while they fit
        grown = _flow_more(lines, item, width, rows, short)
        if grown is None:
            break
        lines = grown
    return lines


def _flow(items, width, rows, short, drop=False):
    lines = [Text()]
    for item in items:
        cell = _cell(item, short)
        if not _place(lines, cell, width, rows):
            return lines if drop else None
    return lines


def _flow_more(lines, item, width, rows, short):
    lines = [line.copy() for line in lines]
    return lines if _place(lines, _cell(item, short), width, rows) else None


def _place(lines: list[Text], cell: Text, width: int, rows: int) -> bool:
    gap = 1 if lines[-1].cell_len else 0
    if lines[-1].cell_len + gap + cell.cell_len <= width:
        lines[-1].append(" " * gap)
        lines[-1].append_text(cell)
        return True
    if len(lines) < rows and cell.cell_len <= width:
        lines.append(cell.copy())
        return True
    return False


def key_rows(width: int) -> int:
    """One line when every essential key of the profile tab fits with its words, else two."""
    essential, _ = profile_keys(viewing=True, compact=True)
    return 1 if _flow(essential, width, 1, short=False) is not None else 2


class KeyBar(Static):
    """The key bar at the bottom: what the keys do on the tab in view."""

    _shown: str | None = None  # the text painted

    def show(self, essential: list[KeyItem], extra: list[KeyItem], rows: int) -> None:
        # the bar spans the screen; while the terminal is resized its own size is still
        # the old one (the app lays it out in its own on_resize)
        width = self.app.size.width
        text = Text("\n").join(key_lines(essential, extra, width, rows))
        text.no_wrap = True
        if text.plain != self._shown:
            self._shown = text.plain
            self.update(text)
