"""Replaying a saved run repeat by repeat: the keys, and the repeat on screen as state.

A snapshot keeps every timed repeat of a run; opened read-only it shows one at a time, the
median first. ← / → step through the timed repeats of the run on the timeline, home / end
jump to the fastest / slowest. The keys are priority bindings, so they hold wherever the
focus is in the tab (the layer list and the runs table bind left, right, home and end
themselves); with no snapshot on screen they are not taken, and those widgets keep them.

The repeat on screen is `picked` (a `RepeatPick`, None when no snapshot is shown), a
reactive any widget can watch (`self.watch(tab, "picked", ...)`); the charts that draw
from the model read the same pick from `Model.repeat_pick()` (the timeline redraws at
once, the others when the keys have been quiet a moment), and the app hears of each
change as a `RepeatPicked` message.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.reactive import var
from textual.timer import Timer

from partui.tui.dashboard.charts.base import KEY_QUIET_S
from partui.tui.dashboard.messages import RepeatPicked
from partui.tui.dashboard.model import Model
from partui.tui.dashboard.tabs.base import TabUnit
from partui.tui.text.repeat_pick import RepeatPick

REPLAY_ACTIONS = ("replay", "replay_to")


class ReplayUnit(TabUnit):
    """A tab that can show a saved run one timed repeat at a time."""

    BINDINGS = [
        Binding("left", "replay(-1)", "Snapshot: previous repeat", show=False, priority=True),
        Binding("right", "replay(1)", "Snapshot: next repeat", show=False, priority=True),
        Binding(
            "home", "replay_to('fastest')", "Snapshot: fastest repeat", show=False, priority=True
        ),
        Binding(
            "end", "replay_to('slowest')", "Snapshot: slowest repeat", show=False, priority=True
        ),
    ]

    picked: var[RepeatPick | None] = var(None)
    _follow: Timer | None = None  # the charts' redraw after the last replay key
    viewing: Model | None = None  # the saved run on screen, read-only: what the keys step

    def charts(self) -> list:
        """The charts that follow the repeat on screen."""
        return []

    def replayed(self) -> Model | None:
        return self.viewing

    def snapshot_mode(self) -> str:
        """The header's words for a snapshot on screen: which repeat of which run."""
        pick = self.picked
        return f"SNAPSHOT · run {pick.run}, {pick.words()}" if pick is not None else "SNAPSHOT"

    def check_action(self, action: str, parameters) -> bool | None:
        if action in REPLAY_ACTIONS:
            return self.replayed() is not None  # else the key goes to the focused widget
        return True

    def action_replay(self, step: int) -> None:
        model = self.replayed()
        if model is not None:
            model.step_repeat(step)
            self.show_pick()

    def action_replay_to(self, which: str) -> None:
        model = self.replayed()
        if model is not None:
            model.choose_repeat(which)
            self.show_pick()

    def show_pick(self) -> None:
        """The repeat on screen moved (a key, another run, another snapshot): the timeline
        follows at once, the other charts once the keys have been quiet for KEY_QUIET_S
        (a plotext frame costs tens of milliseconds: a held key steps the timeline only)."""
        model = self.replayed()
        self.picked = model.repeat_pick() if model is not None else None
        if model is None:
            return
        for chart in self.charts():
            if chart.id == "timeline":
                chart.update_from(model)
        if self._follow is not None:
            self._follow.stop()
        self._follow = self.set_timer(KEY_QUIET_S, self.follow_pick)

    def follow_pick(self) -> None:
        """Every chart that follows the repeat on screen redraws if it moved."""
        self._follow = None
        model = self.replayed()
        if model is not None:
            for chart in self.charts():
                chart.update_from(model)

    def watch_picked(self, pick: RepeatPick | None) -> None:
        subtitle = "← → repeats · home end" if pick else ""
        for pane in self.query("#timeline"):  # the header says which repeat, in words
            if pane.border_subtitle != subtitle:
                pane.border_subtitle = subtitle
        self.report()
        self.post_message(RepeatPicked(self.tab_id, pick))
