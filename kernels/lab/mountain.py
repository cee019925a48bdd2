"""The memory mountain: sweep a working set again and again, reading or updating it."""

from __future__ import annotations

from functools import cache

import numpy as np


def read_sum(a, passes):
    """Sum every element of `a`, `passes` times over (float32 partial sums)."""
    s = np.float32(0.0)
    for _ in range(passes):
        for i in range(a.size):
            s += a[i]
    return s


def read_modify_write(a, passes):
    """a[i] += 1 for every element, `passes` times over."""
    one = np.float32(1.0)
    for _ in range(passes):
        for i in range(a.size):
            a[i] += one


def numpy_read_sum(a, passes):
    """The same reading with numpy: one `a.sum()` call per pass."""
    s = 0.0
    for _ in range(passes):
        s += float(a.sum())
    return s


@cache
def native():
    from partui.kernels.lab.jit import compile_all

    # fastmath: vectorised partial sums, so the loop is limited by the caches, not by
    # the latency of a single addition chain.
    return compile_all(read_sum, read_modify_write, fastmath=True)
