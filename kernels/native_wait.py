"""Waiting for another thread without the interpreter lock: spin on a flag, briefly.

A parked thread asleep in the kernel takes tens of microseconds to wake on a VM whose
other vCPU is idle, as long as a whole small task. Spinning a short while first,
without the GIL, sees a flag that another thread sets within a fraction of a
microsecond; past the limit the caller goes to sleep as before. Only where a CPU is
free: on a busy machine the spinning thread takes the CPU from the thread it waits for
(and yielding in the loop, sched_yield, gave the CPU away for a millisecond at a time).
Imported lazily (numba).
"""

from __future__ import annotations

import ctypes

import numpy as np
from numba import njit

from . import jitcache

_CLOCK_MONOTONIC = 1  # Linux
_libc: list = []  # [clock_gettime as a ctypes function numba can call] or [None]


def _clock():
    if not _libc:
        try:
            clock = ctypes.CDLL(None).clock_gettime
        except (OSError, AttributeError):
            _libc.append(None)
        else:
            clock.restype, clock.argtypes = ctypes.c_int, [ctypes.c_int, ctypes.c_void_p]
            _libc.append(clock)
    return _libc[0]


@njit(nogil=True, cache=jitcache.cache_enabled())
def _spin(flags, index, value, clock, ts, limit_ns, then_ns):
    clock(_CLOCK_MONOTONIC, ts.ctypes.data)
    start = ts[0] * 1_000_000_000 + ts[1]
    now = start
    while flags[index] == value:  # reloaded each turn: the clock call may write any memory
        clock(_CLOCK_MONOTONIC, ts.ctypes.data)
        now = ts[0] * 1_000_000_000 + ts[1]
        if now - start > limit_ns:
            return False
    seen = now
    while now - seen < then_ns:
        clock(_CLOCK_MONOTONIC, ts.ctypes.data)
        now = ts[0] * 1_000_000_000 + ts[1]
    return True


def spin_while(flags: np.ndarray, index: int, value: int, limit_ns: int, then_ns: int = 0) -> bool:
    """Spin, without the GIL, while flags[index] (int64) == value, at most limit_ns; True if
    it changed, after `then_ns` more (the thread that set it may want the GIL that long)."""
    clock = _clock()
    if clock is None:
        return False
    return bool(_spin(flags, index, value, clock, np.zeros(2, np.int64), limit_ns, then_ns))
