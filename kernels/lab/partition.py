"""Cyclic against block partition of an array update, with the same stride and the same work.

Every pass adds 1 to each element of an array of `length` floats, shared by `threads` workers:
- cyclic: worker k updates a[k::threads] over the whole array (the cook who makes every
  threads-th sandwich); neighbouring elements, hence every cache line, belong to all workers.
- block: worker k owns a[k*length/threads : (k+1)*length/threads] and updates it with the
  same stride, in `threads` sweeps (offsets 0, 1, ...): the same number of writes, the same
  stride, the same cache lines touched per worker and pass, but no line is shared.
A worker's work is a list of sweeps (start, stop), all with step `threads`.
"""

from __future__ import annotations

from functools import cache

import numpy as np


def cyclic_sweeps(length: int, worker: int, threads: int) -> list[tuple[int, int]]:
    return [(worker, length)]


def block_sweeps(length: int, worker: int, threads: int) -> list[tuple[int, int]]:
    lo = length * worker // threads
    hi = length * (worker + 1) // threads
    return [(lo + off, hi) for off in range(threads)]


def sweep_elements(sweeps, step: int) -> int:
    return sum(len(range(s, e, step)) for s, e in sweeps)


def split_sweeps(sweeps, step: int, max_elements: int) -> list[tuple[int, int]]:
    """The same sweeps in the same order, cut in pieces of at most `max_elements` updates."""
    out = []
    span = max(1, max_elements) * step
    for start, stop in sweeps:
        s = start
        while s < stop:
            e = min(stop, s + span)
            out.append((s, e))
            s = e
    return out


def add_one(a, starts, stops, step, passes):
    """a[i] += 1 for i in range(starts[k], stops[k], step), every sweep k, `passes` times."""
    one = np.float32(1.0)
    for _ in range(passes):
        for k in range(starts.size):
            for i in range(starts[k], stops[k], step):
                a[i] += one


def numpy_views(a, sweeps, step: int) -> list:
    return [a[s:e:step] for s, e in sweeps]


def numpy_add_one(views, passes):
    """The same update with numpy: one in-place `view += 1` per sweep and pass."""
    for _ in range(passes):
        for v in views:
            v += np.float32(1.0)


@cache
def native():
    from partui.kernels.lab.jit import compile_all

    return compile_all(add_one)
