"""The dashboard's messages: what the engine sent, and what a tab is doing now."""

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
