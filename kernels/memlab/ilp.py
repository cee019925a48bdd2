"""Instruction-level parallelism: one sum kept in 1, 2, 4, 8 or 16 independent chains.

`sum_chains<k>(a, passes)` adds every element of a float64 array `passes` times over into k
accumulators (element i into accumulator i % k), then adds the accumulators together. Each
accumulator is a chain of additions that must wait for the previous one (the adder's
latency); k chains let k additions be in flight at once, until the adders' throughput (or
the loads) is the limit.

They are compiled WITHOUT fastmath: the compiler may then not reassociate the additions, so
it can neither fold the chains into one nor split a chain into vector partial sums; the
loop keeps exactly k scalar chains (tests check the machine code).
"""

from __future__ import annotations

from functools import cache


def sum_chains1(a, passes):
    s0 = 0.0
    for _ in range(passes):
        for i in range(a.size):
            s0 += a[i]
    return s0


def sum_chains2(a, passes):
    s0 = s1 = 0.0
    n = a.size - a.size % 2
    for _ in range(passes):
        for i in range(0, n, 2):
            s0 += a[i]
            s1 += a[i + 1]
        for i in range(n, a.size):
            s0 += a[i]
    return s0 + s1


def sum_chains4(a, passes):
    s0 = s1 = s2 = s3 = 0.0
    n = a.size - a.size % 4
    for _ in range(passes):
        for i in range(0, n, 4):
            s0 += a[i]
            s1 += a[i + 1]
            s2 += a[i + 2]
            s3 += a[i + 3]
        for i in range(n, a.size):
            s0 += a[i]
    return (s0 + s1) + (s2 + s3)


def sum_chains8(a, passes):
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    n = a.size - a.size % 8
    for _ in range(passes):
        for i in range(0, n, 8):
            s0 += a[i]
            s1 += a[i + 1]
            s2 += a[i + 2]
            s3 += a[i + 3]
            s4 += a[i + 4]
            s5 += a[i + 5]
            s6 += a[i + 6]
            s7 += a[i + 7]
        for i in range(n, a.size):
            s0 += a[i]
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


def sum_chains16(a, passes):
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    s8 = s9 = s10 = s11 = s12 = s13 = s14 = s15 = 0.0
    n = a.size - a.size % 16
    for _ in range(passes):
        for i in range(0, n, 16):
            s0 += a[i]
            s1 += a[i + 1]
            s2 += a[i + 2]
            s3 += a[i + 3]
            s4 += a[i + 4]
            s5 += a[i + 5]
            s6 += a[i + 6]
            s7 += a[i + 7]
            s8 += a[i + 8]
            s9 += a[i + 9]
            s10 += a[i + 10]
            s11 += a[i + 11]
            s12 += a[i + 12]
            s13 += a[i + 13]
            s14 += a[i + 14]
            s15 += a[i + 15]
        for i in range(n, a.size):
            s0 += a[i]
    return (((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))) + (
        ((s8 + s9) + (s10 + s11)) + ((s12 + s13) + (s14 + s15))
    )


CHAINS = {1: sum_chains1, 2: sum_chains2, 4: sum_chains4, 8: sum_chains8, 16: sum_chains16}


@cache
def native() -> dict:
    """chain count -> the compiled sum (fastmath off: the chains stay chains)."""
    from .jit import compile_all

    # not cached on disk: the experiment reads the machine code of what it measures
    compiled = compile_all(*CHAINS.values(), fastmath=False, cache=False)
    return {k: getattr(compiled, f.__name__) for k, f in CHAINS.items()}
