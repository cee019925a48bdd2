"""Time in tests: budgets that stretch with the machine's load, and one way to wait for a state.

A test's time limit is what partui promises on a machine with a core to spare ("Ctrl+C
stops within a second"); on a busy machine every step of it waits its turn for a core, so
the limit is multiplied by how many runnable tasks there are per core (`budget`). A test
that needs a state waits for that state (`wait_until`, `wait_until_async`), never for a
fixed time that usually suffices.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any


def cores() -> int:
    """The CPUs this process may run on (a container or taskset may allow fewer than exist)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def load_factor() -> float:
    """Runnable tasks per core, at least 1. The load average lags by a minute, so the tasks
    runnable right now count too (a burst of worker processes starting is load already)."""
    with open("/proc/loadavg") as f:
        runnable_now = int(f.read().split()[3].split("/")[0])
    return max(1.0, max(os.getloadavg()[0], runnable_now) / cores())


def budget(seconds: float) -> float:
    """`seconds` on a machine with a core to spare, stretched by the load right now."""
    return seconds * load_factor()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class TimedOut(AssertionError):
    pass


def _fail(message: str | Callable[[], str] | None, limit: float) -> TimedOut:
    text = message() if callable(message) else message
    return TimedOut(f"{text or 'the state never came'} (waited {limit:.1f} s)")


def wait_until(
    predicate: Callable[[], Any],
    timeout: float,
    *,
    interval: float = 0.02,
    message: str | Callable[[], str] | None = None,
    between: Callable[[], None] | None = None,
) -> Any:
    """Poll `predicate` until it returns something true, and return that. Gives up with
    TimedOut after `budget(timeout)` seconds (`message`, or a function making it, says what
    was awaited). `between` runs before each try (to drain events, tick an app, look at a
    process tree)."""
    limit = budget(timeout)
    deadline = time.monotonic() + limit
    while True:
        if between is not None:
            between()
        got = predicate()
        if got:
            return got
        if time.monotonic() > deadline:
            raise _fail(message, limit)
        time.sleep(interval)


async def wait_until_async(
    predicate: Callable[[], Any],
    timeout: float,
    *,
    interval: float = 0.02,
    message: str | Callable[[], str] | None = None,
    between: Callable[[], None] | None = None,
) -> Any:
    """`wait_until` inside an event loop (a Textual app under test): sleeps without blocking
    the loop, so the app keeps handling its messages while the test waits."""
    limit = budget(timeout)
    deadline = time.monotonic() + limit
    while True:
        if between is not None:
            between()
        got = predicate()
        if got:
            return got
        if time.monotonic() > deadline:
            raise _fail(message, limit)
        await asyncio.sleep(interval)
