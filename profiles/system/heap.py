"""Giving freed heap memory back to the system, at most every so often.

glibc keeps the memory a process frees for its next allocations, and returns it to the
system only from the top of its heap. A long live session that once ran a large
configuration (a big batch's buffers) then holds that peak for good, and its resident size
grows in steps that look like a leak. `malloc_trim(0)` returns the free pages of every
arena; it costs milliseconds, so a long-running process calls `trim_now_and_then` where
it is idle (between runs) and the call acts at most every TRIM_EVERY_S.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time

TRIM_EVERY_S = 10.0

_state: dict = {"libc": None, "looked": False, "at": float("-inf")}


def _trim_function():
    if not _state["looked"]:
        _state["looked"] = True
        name = ctypes.util.find_library("c")
        try:
            libc = ctypes.CDLL(name) if name else None
            _state["libc"] = libc.malloc_trim if libc is not None else None
        except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
            _state["libc"] = None
    return _state["libc"]


def trim() -> bool:
    """Return the free heap pages to the system now; False where the C library cannot."""
    fn = _trim_function()
    if fn is None:
        return False
    fn(0)
    return True


def trim_now_and_then(now: float | None = None) -> bool:
    """trim(), unless the last one was less than TRIM_EVERY_S ago; whether it trimmed."""
    now = time.monotonic() if now is None else now
    if now - _state["at"] < TRIM_EVERY_S:
        return False
    _state["at"] = now
    return trim()
