"""Errors the command line reports as one line with exit code 2 (bad input)."""

from __future__ import annotations

import signal


class UsageError(Exception):
    """Bad input from the user: a value, a file, a folder. Exit code 2."""


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP: stopped like Ctrl+C (workers stopped, shared memory unlinked).

    A KeyboardInterrupt, so every clean-up path written for Ctrl+C runs for these too.
    """

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def stop_words(signum: int) -> str:
    """How partui says a signal stopped it: "interrupted" (Ctrl+C), "stopped by SIGTERM"."""
    return "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
