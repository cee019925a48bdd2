"""A Static that only repaints: its size never follows its text."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class Painted(Static):
    """A Static whose size never follows its text (the stylesheet or the layout gives it its
    rows): new text is only repainted. Static.update also lays the whole screen out again,
    and that re-renders every pane and chart: tens of ms on each key press."""

    _painted: Text | None = None

    def paint(self, text: Text) -> None:
        self._painted = text
        self.refresh()

    def render(self):
        return self._painted if self._painted is not None else super().render()
