"""How many workers a run may have, and the errors a run's configuration raises. Free of
dataclasses and numpy: `partui --help` and the command line's error handling load no more."""

from __future__ import annotations

import os

MAX_WORKERS = 256


class ConfigError(ValueError):
    """A configuration value out of range or unknown: one line naming the valid choices."""


class RunCancelledError(Exception):
    """A run stopped by its cancel token (esc, Ctrl+C) before it finished."""


class WorkerLost(RuntimeError):
    """A worker process died, or a Dask worker went away, while a run needed it: said in
    words (which worker, what it was doing)."""


def default_workers() -> int:
    return os.cpu_count() or 1
