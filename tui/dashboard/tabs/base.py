"""What every tab is: a unit with its own keys, its `esc`, its section of help and its status."""

from __future__ import annotations

from textual.containers import Vertical

from partui.tui.dashboard.keys import KeyItem
from partui.tui.dashboard.messages import TabStatus


class TabUnit(Vertical):
    """A tab of the dashboard. Its BINDINGS hold while focus is inside it, so a key of
    another tab does nothing here; it tells the app what it runs with `report()`."""

    tab_id = ""  # the TabPane's id
    title = ""  # as the help names it

    _reported: str | None = None

    @property
    def mode(self) -> str | None:
        """What the tab runs now, in a few words for the header; None when nothing."""
        return None

    def report(self) -> None:
        """Post the tab's status when its mode changed."""
        mode = self.mode
        if mode != self._reported:
            self._reported = mode
            self.post_message(TabStatus(self.tab_id, mode))

    def key_items(self, compact: bool) -> tuple[list[KeyItem], list[KeyItem]]:
        """(essential, extra) keys for the key bar."""
        return [], []

    def help_keys(self) -> list[tuple[str, str]]:
        """(key as typed, what it does here, in full) for the help."""
        return []

    def help_sections(self) -> list[tuple[str, list[tuple[str, str]], int]]:
        """More help of this tab: (title, rows, width of the name column)."""
        return []

    def take_focus(self) -> None:
        """Focus the tab's first widget, so its keys hold."""
        self.focus()
