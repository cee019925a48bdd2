"""The handler partui's first instructions put on INT, TERM and HUP (entry), until main
replaces it: kept apart so that main can recognise it without importing the entry point."""

from __future__ import annotations

import os

from partui.tui.cli.errors import stop_words


def while_starting(signum, frame) -> None:
    """One line and 128 + the signal's number: nothing has been started that needs stopping."""
    os.write(2, f"partui: {stop_words(signum)}\n".encode())
    os._exit(128 + signum)
