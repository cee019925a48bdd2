"""Native parallel regions: a whole repeat of a layer's tasks as one call that runs them on
numba's thread pool (`parallel=True`, `prange` over the tasks) without coming back to the
interpreter in between.

Each task stamps its own start and end (clock_gettime on the clock time.perf_counter_ns
reads, so the stamps sit on the same time line as every other executor's spans), the pool
thread that ran it (numba's thread index: the caller is 0) and that thread's native id.
Weights are packed before the tasks start, so tasks only read them; `refresh` asks the call
to check them against the packed copy first (the caller knows when they may have changed).

A parallel loop cannot take tuples of arrays, so each task's buffers are one array with a
task axis, and its samples a row of `bounds`; the network's structure (three blocks, three
linear layers) is spelled out, as the fused training step does.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from numba import get_thread_id, njit, prange, types

from partui.kernels.forward.native import (
    conv_cols_packed,
    conv_pool_block,
    conv_rows_packed,
    flatten_nchw,
    linear_act,
    logsoftmax_rows,
    refresh_packing,
)
from partui.kernels.runtime import jitcache

# The C library's functions by symbol name (resolved when the kernel is loaded, so a cached
# kernel holds no address of this process), pointers passed as integers (the same register
# on the 64-bit ABIs numba runs on). Passed as ctypes functions instead, two of them cost the
# dispatcher tens of microseconds a call to type. The clock's id is asked of Python
# (kernels.runtime.native_clock) and comes in as an argument.
_clock_gettime = types.ExternalFunction("clock_gettime", types.int32(types.int32, types.intp))
_gettid = types.ExternalFunction("gettid", types.int64())
# numba's OpenMP layer reads this when it starts, at the first region: its threads then sleep
# between regions instead of spinning, as the parked threads do. On a busy machine a spinning
# waiter takes the CPU from the worker it waits for (docs/PERFORMANCE.md); set it to ACTIVE
# to spin, or set GOMP_SPINCOUNT (libgomp's spins before sleeping) to spin that long.
if "GOMP_SPINCOUNT" not in os.environ:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
PAR: dict[str, Any] = dict(
    nogil=True, cache=jitcache.cache_enabled(), error_model="numpy", parallel=True
)
STAMP_COLUMNS = 6  # start_ns, end_ns, pool thread, native thread id, then a timespec


@njit(inline="always", nogil=True)
def _now(clock_id, ts):
    _clock_gettime(clock_id, ts.ctypes.data)
    return ts[0] * 1_000_000_000 + ts[1]


@njit(inline="always", nogil=True)
def _stamp_start(clock_id, stamps, t):
    stamps[t, 0] = _now(clock_id, stamps[t, 4:6])


@njit(inline="always", nogil=True)
def _stamp_end(clock_id, stamps, t):
    stamps[t, 1] = _now(clock_id, stamps[t, 4:6])
    stamps[t, 2] = get_thread_id()
    stamps[t, 3] = _gettid()


@njit(**PAR)
def empty_region(n, refresh, clock_id, stamps):
    """n tasks that do nothing but stamp: what the region itself costs a repeat."""
    for t in prange(n):
        _stamp_start(clock_id, stamps, t)
        _stamp_end(clock_id, stamps, t)


@njit(**PAR)
def conv_cols_region(sgemm, weights, x, out, cols, bounds, refresh, clock_id, stamps):
    """Task t: samples bounds[t] of x into out planes (n, oc, p), patch columns cols[t]."""
    if refresh:
        refresh_packing(weights, False)
    wc = weights[4]
    for t in prange(bounds.shape[0]):
        n0, n1 = bounds[t, 0], bounds[t, 1]
        _stamp_start(clock_id, stamps, t)
        conv_cols_packed(sgemm, x[n0:n1], wc, out[n0:n1], cols[t])
        _stamp_end(clock_id, stamps, t)


@njit(**PAR)
def conv_rows_region(
    sgemm, weights, x, out, rows, res, img, chunks, bounds, refresh, clock_id, stamps
):
    """Task t: samples bounds[t], chunks[t] samples per GEMM, its own rows/res/img buffers."""
    if refresh:
        refresh_packing(weights, True)
    wr = weights[4]
    for t in prange(bounds.shape[0]):
        n0, n1 = bounds[t, 0], bounds[t, 1]
        _stamp_start(clock_id, stamps, t)
        conv_rows_packed(sgemm, x[n0:n1], wr, out[n0:n1], rows[t], res[t], img[t], chunks[t])
        _stamp_end(clock_id, stamps, t)


@njit(**PAR)
def network_region(sgemm, w1, w2, w3, trunk, head, y, out, bounds, refresh, clock_id, stamps):
    """The network's forward pass, task t on samples bounds[t]: three conv / pool [/ GELU]
    blocks (w1..w3: their weights as conv_pool_nhwc takes them; trunk: per block its rows,
    res and pooled buffers with a task axis, samples per GEMM, whether a GELU follows and
    whether the block runs direct),
    features, then three linear layers and log-softmax (head)."""
    if refresh:
        refresh_packing(w1, True)
        refresh_packing(w2, True)
        refresh_packing(w3, True)
    p1, p2, p3 = w1[4], w2[4], w3[4]
    r1, q1, o1, r2, q2, o2, r3, q3, o3, chunks, gelus, direct = trunk
    features, lw1, lb1, h1, lw2, lb2, h2, lw3, lb3, h3, head_gelus = head
    for t in prange(bounds.shape[0]):
        n0, n1 = bounds[t, 0], bounds[t, 1]
        g = n1 - n0
        _stamp_start(clock_id, stamps, t)
        a1, a2, a3 = o1[t, :g], o2[t, :g], o3[t, :g]
        conv_pool_block(sgemm, y[n0:n1], p1, r1[t], q1[t], a1, chunks[t, 0], gelus[0], direct[0])
        conv_pool_block(sgemm, a1, p2, r2[t], q2[t], a2, chunks[t, 1], gelus[1], direct[1])
        conv_pool_block(sgemm, a2, p3, r3[t], q3[t], a3, chunks[t, 2], gelus[2], direct[2])
        f = features[t, :g]
        flatten_nchw(o3[t, :g], f)
        linear_act(sgemm, f, lw1, lb1, head_gelus[0], h1[t, :g])
        linear_act(sgemm, h1[t, :g], lw2, lb2, head_gelus[1], h2[t, :g])
        linear_act(sgemm, h2[t, :g], lw3, lb3, head_gelus[2], h3[t, :g])
        logsoftmax_rows(h3[t, :g], out[n0:n1])
        _stamp_end(clock_id, stamps, t)


def new_stamps(tasks: int) -> np.ndarray:
    return np.zeros((tasks, STAMP_COLUMNS), np.int64)
