"""False sharing: each thread increments its own int64 counter, n times.

The counters are either adjacent (several in one cache line: every increment by one core
takes the line away from the others) or padded one cache line apart (no line is shared).
"""

from __future__ import annotations

from functools import cache

import numpy as np

from partui.kernels.lab.buffers import LINE_FALLBACK, aligned_zeros
from partui.kernels.runtime.atomics import atomic_add, stored_increment

COUNTER_BYTES = 8


def count_plain(counters, slot, n):
    """counters[slot] += 1, n times: an unlocked increment, stored every time."""
    for _ in range(n):
        stored_increment(counters, slot)


def count_atomic(counters, slot, n):
    """counters[slot] += 1, n times, each a locked (atomic) read-modify-write."""
    for _ in range(n):
        atomic_add(counters, slot, 1)


KERNELS = {"plain": count_plain, "atomic": count_atomic}


def slots(threads: int, padded: bool, line: int = LINE_FALLBACK) -> list[int]:
    """Index of each thread's counter: neighbours, or one cache line apart."""
    gap = max(1, line // COUNTER_BYTES) if padded else 1
    return [k * gap for k in range(threads)]


def make_counters(threads: int, line: int = LINE_FALLBACK) -> np.ndarray:
    """Zeroed int64 counters starting on a cache line, with room for the padded layout."""
    return aligned_zeros(threads * max(1, line // COUNTER_BYTES), np.int64, align=max(line, 64))


@cache
def native():
    from partui.kernels.lab.jit import compile_all

    return compile_all(count_plain, count_atomic)
