"""The dashboard's messages: what the engine sent, what a tab is doing now, the repeat it shows."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message


@dataclass
class EngineEvents(Message):
    """A batch of the profile engine's events, posted by the worker thread that reads them."""

    events: list


@dataclass
class TabStatus(Message):
    """A tab says what it runs now (`mode`: "running conv2", "training", "lab: stride"; None
    when it runs nothing); the header and the key bar follow."""

    tab: str
    mode: str | None


@dataclass
class RepeatPicked(Message):
    """The timed repeat a tab shows of a saved run moved (`pick`: a RepeatPick; None when
    no saved run is shown): anything that follows the repeat on screen can listen."""

    tab: str
    pick: object
