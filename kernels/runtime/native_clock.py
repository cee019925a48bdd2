"""The clock native code stamps with: clock_gettime on the very clock time.perf_counter_ns
reads, so native stamps and the interpreter's spans share one time line; and the calling
thread's native id (the same C functions are called from numba by symbol).

Which clock perf_counter reads is asked of Python at run time (time.get_clock_info), never
assumed; a platform where it is not a clock_gettime clock gets None and a reason.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from functools import lru_cache

_CLOCKS = ("CLOCK_MONOTONIC_RAW", "CLOCK_MONOTONIC", "CLOCK_BOOTTIME", "CLOCK_REALTIME")


class NativeClock:
    """The clock's id, and clock(clock_id, timespec*) and gettid() as ctypes functions (native
    kernels call the same C functions by symbol: kernels.forward.region)."""

    def __init__(self, clock, clock_id: int, gettid):
        self.clock, self.clock_id, self.gettid = clock, clock_id, gettid


def perf_counter_clock_id() -> int | None:
    """The clock_gettime id time.perf_counter reads, from its own description."""
    impl = time.get_clock_info("perf_counter").implementation
    for name in _CLOCKS:  # the longest names first: MONOTONIC_RAW contains MONOTONIC
        if f"clock_gettime({name})" in impl and hasattr(time, name):
            return int(getattr(time, name))
    return None


@lru_cache(maxsize=1)
def native_clock() -> tuple[NativeClock | None, str]:
    """(the clock, "") or (None, why not)."""
    clock_id = perf_counter_clock_id()
    if clock_id is None:
        impl = time.get_clock_info("perf_counter").implementation
        return None, f"time.perf_counter reads {impl}, not a clock_gettime clock"
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        clock = libc.clock_gettime
    except (OSError, AttributeError) as exc:
        return None, f"clock_gettime not found in the C library ({exc})"
    clock.restype = ctypes.c_int
    clock.argtypes = [ctypes.c_int, ctypes.c_void_p]
    gettid = getattr(libc, "gettid", None)
    if gettid is None:  # glibc before 2.30
        return None, "gettid not found in the C library"
    gettid.restype = ctypes.c_long
    gettid.argtypes = []
    return NativeClock(clock, clock_id, gettid), ""
