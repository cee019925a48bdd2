"""Strided reads: touch every `stride`-th float of a large array and sum them."""

from __future__ import annotations

from functools import cache


def strided_sum(a, stride):
    """The sum of a[0], a[stride], a[2*stride], ... (float64 accumulator)."""
    s = 0.0
    for i in range(0, a.size, stride):
        s += a[i]
    return s


@cache
def native():
    from partui.kernels.lab.jit import compile_all

    # fastmath lets the compiler keep several partial sums, so the loop waits on memory,
    # not on the latency of one chain of additions.
    return compile_all(strided_sum, fastmath=True)
