"""The settings pane: the run's settings, each with the key that changes it."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.message import Message

from partui.kernels.model.layers import get_layer
from partui.kernels.plan.strategies import settings_warnings
from partui.profiles.records.config import RunConfig
from partui.tui.dashboard.layout import fit_words
from partui.tui.dashboard.model import Model
from partui.tui.dashboard.widgets.painted import Painted
from partui.tui.text.safe_text import printable


def config_warnings(c, logical_cores: int | None) -> list[str]:
    """Valid but unwise settings of the run configuration `c` (a warning, not a refusal)."""
    return settings_warnings(
        get_layer(c.layer), c.strategy, c.executor, c.workers, c.batch, logical_cores
    )


class SettingsPane(Painted):
    """The run's settings with the key that changes each; an invalid combination is shown as
    such."""

    BORDER_TITLE = "settings"

    class Resized(Message):
        """The settings need another number of lines: the layout gives the rows out again."""

    rows_needed = 9  # lines of text, borders not included
    _rows_width = 0  # the width rows_needed was counted at
    _shown_text: str | None = None  # the text painted
    _shown_for: tuple | None = None  # show()'s arguments, to draw again at a new width

    def show(
        self,
        model: Model,
        live: bool,
        queued: RunConfig | None = None,
        logical_cores: int | None = None,
    ) -> None:
        """`queued`: a run asked for that the engine has not started yet (it may be
        compiling kernels first), shown instead of "idle". `logical_cores`: of this machine,
        for the warnings."""
        self._shown_for = (model, live, queued, logical_cores)
        c = model.config
        rows = [
            ("layer", c.layer, "↑↓"),
            ("strategy", c.strategy, "t/T"),
            ("kernel", c.kernel, "k"),
            ("executor", c.executor, "e/E"),
            ("workers", str(c.workers), "+/-"),
            ("batch", str(c.batch), "[ ]"),
        ]
        width = max(20, self.size.width or 42)  # the text's width (borders, padding apart)
        text = Text()
        column = max(13, *(len(value) + 1 for _, value, _ in rows))  # keys stay apart
        for name, value, key in rows:
            text.append(f"{name:<9}", "dim")
            text.append(value.ljust(column), "bold")
            text.append(f"{key}\n", "dim")
        # BLAS threads and repeats share a row: one more row for the layers at 80x24
        warmup = f" (+{c.warmup} warm-up)" if width >= 34 else f"+{c.warmup}"
        text.append("BLAS thr ", "dim")
        text.append(f"{c.blas_threads:<3}", "bold")
        text.append("repeats ", "dim")
        text.append(str(c.repeats), "bold")
        text.append(f"{warmup}\n", "dim")
        reason = model.not_applicable
        if reason:
            text.append("✗ not applicable\n", "bold red")
            text.append(reason, "red")
        else:
            text.append("✓ valid combination", "green")
            for warning in config_warnings(c, logical_cores):
                text.append(f"\n⚠ {warning}", "yellow")
        text.append("\n")
        # one line, whatever it says: a status that wraps now and then would move the layout
        if model.read_only:
            status = (
                f"viewing {printable(Path(model.source or '').name)} (read-only, l: back to live)",
                "bold yellow",
            )
        elif live:  # its runs come several a second: the line stays as it is
            status = ("live mode ON", "bold")
        elif model.running is not None:
            status = (f"running: {model.running.label()}", "yellow")
        elif queued is not None:
            status = (f"queued: {queued.label()}", "yellow")
        else:
            status = ("idle: r run, space live", "")
        text.append(fit_words(status[0], width, clauses=False), status[1])
        if text.plain != self._shown_text:  # redraw only on change
            self._shown_text = text.plain
            self.paint(text)
            lines = len(text.wrap(self.app.console, width))
            # a warning that comes and goes with a key does not move the panes (and lay the
            # screen out again) each time: the pane only grows, until the width changes
            grow = lines > self.rows_needed
            if grow or (lines < self.rows_needed and width != self._rows_width):
                self.rows_needed = lines
                self._rows_width = width
                self.post_message(self.Resized())

    def on_resize(self) -> None:
        self._shown_text = None  # wrap again at the new width
        if self._shown_for is not None:
            self.show(*self._shown_for)
