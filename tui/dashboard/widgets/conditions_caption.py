"""The profile tab's conditions line: under the runs table, what the run on the timeline ran
under (governor, turbo, load, other programs' CPU), or the machine now before any run."""

from __future__ import annotations

from rich.text import Text

from partui.profiles.system.conditions import Conditions
from partui.tui.dashboard.model import Model
from partui.tui.text.conditions_text import conditions_line


def conditions_caption(model: Model, now: Conditions | None) -> Text:
    """The line for the runs table's bottom border (a Text: never read as markup)."""
    run = model.run_number(model.selected) if model.selected is not None else None
    run = run or (model.runs[-1] if model.runs else None)
    if run is not None:
        c = run.conditions
        if c is None:  # a run from a snapshot made before partui recorded them
            return Text("")
        return Text(f" {conditions_line(c, unknown=False)} ", "dim" if c.quiet else "yellow")
    if now is None or model.read_only:
        return Text("")
    return Text(f" {conditions_line(now, unknown=False)} (now, before any run) ", "dim")
