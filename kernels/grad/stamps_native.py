"""The stamped Hogwild! update, native and GIL-free (imported lazily, like `native`): each
parameter block written between `stamps.begin_write` and `stamps.end_write`."""

from __future__ import annotations

from numba import njit

from partui.kernels.forward.native import JIT
from partui.kernels.grad import stamps
from partui.kernels.grad.native import sgd_range
from partui.kernels.runtime import atomics

atomics.register()  # atomic_add compiles to LLVM's atomicrmw in the kernels below

_begin = njit(inline="always", **JIT)(stamps.begin_write)
_end = njit(inline="always", **JIT)(stamps.end_write)
read_versions = njit(**JIT)(stamps.read_versions)


@njit(**JIT)
def stamped_sgd(p, g, v, counters, edges, seen, stale, lr, momentum, mode):
    """`sgd_range` (mode 1: p -= lr g; 2: with momentum v) on every block [edges[b],
    edges[b + 1]), each stamped: stale[b] gets its staleness; returns how many of the
    block writes overlapped another worker's."""
    overlaps = 0
    for b in range(edges.shape[0] - 1):
        begun, under_way = _begin(counters, b)
        sgd_range(p, g, v, p, edges[b], edges[b + 1], lr, momentum, mode)
        s, o = _end(counters, b, seen[b], begun, under_way)
        stale[b] = s
        overlaps += o
    return overlaps
