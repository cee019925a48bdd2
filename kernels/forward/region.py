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

The arrays come in as one table, a row per array (its address, then its shape), made once
per binding (kernels.forward.region_bind) and read back here as C-contiguous views: numba
unboxes each array argument at every call, and dozens of them, on caches a repeat's kernel
has just filled, cost more than the parallel region itself. Each region's LAYOUT says what
its rows hold (dimensions and dtype, in order); the binding checks the arrays against it.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from numba import carray, get_thread_id, njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

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
TABLE_COLUMNS = 6  # an array's address, then up to five dimensions

F32, I64, BOOL = np.dtype(np.float32), np.dtype(np.int64), np.dtype(np.bool_)
# a conv layer's weights as the native kernels keep them (vectorized._native_weights): w as
# (oc, 9c), b, the copies kept at the last packing, the packing, its state
WEIGHTS = ((2, F32), (1, F32), (2, F32), (1, F32), (2, F32), (1, I64))
CONV_COLS_LAYOUT = (*WEIGHTS, (4, F32), (3, F32), (3, F32), (2, I64))  # x, out, cols, bounds
# x, out, rows, res, img, chunks, bounds
CONV_ROWS_LAYOUT = (*WEIGHTS, (4, F32), (3, F32), (3, F32), (3, F32), (4, F32), (1, I64), (2, I64))
NETWORK_LAYOUT = (
    *WEIGHTS * 3,
    *((3, F32), (3, F32), (5, F32)) * 3,  # per block: rows, res, pooled (a task axis first)
    (2, I64), (1, BOOL), (1, BOOL),  # samples per GEMM (task, block), GELU, direct per block
    (3, F32),  # features
    *((2, F32), (1, F32), (3, F32)) * 3,  # per linear layer: weight, bias, output
    (1, BOOL),  # GELU per linear layer
    (4, F32), (2, F32), (2, I64),  # the input as NHWC, the output, bounds
)  # fmt: skip


@intrinsic
def _address(typingctx, value):
    """An integer as the address it holds."""
    if not isinstance(value, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return types.voidptr(value), codegen


@njit(inline="always", nogil=True)
def _v1(tab, s, dtype):
    return carray(_address(tab[s, 0]), (tab[s, 1],), dtype)


@njit(inline="always", nogil=True)
def _v2(tab, s, dtype):
    return carray(_address(tab[s, 0]), (tab[s, 1], tab[s, 2]), dtype)


@njit(inline="always", nogil=True)
def _v3(tab, s, dtype):
    return carray(_address(tab[s, 0]), (tab[s, 1], tab[s, 2], tab[s, 3]), dtype)


@njit(inline="always", nogil=True)
def _v4(tab, s, dtype):
    return carray(_address(tab[s, 0]), (tab[s, 1], tab[s, 2], tab[s, 3], tab[s, 4]), dtype)


@njit(inline="always", nogil=True)
def _v5(tab, s, dtype):
    shape = (tab[s, 1], tab[s, 2], tab[s, 3], tab[s, 4], tab[s, 5])
    return carray(_address(tab[s, 0]), shape, dtype)


@njit(inline="always", nogil=True)
def _weights(tab, s):
    """WEIGHTS from rows s..s+5."""
    f = np.float32
    return (
        _v2(tab, s, f), _v1(tab, s + 1, f), _v2(tab, s + 2, f), _v1(tab, s + 3, f),
        _v2(tab, s + 4, f), _v1(tab, s + 5, np.int64),
    )  # fmt: skip


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
def conv_cols_region(sgemm, tab, refresh, clock_id, stamps):
    """Task t: samples bounds[t] of x into out planes (n, oc, p), patch columns cols[t]
    (CONV_COLS_LAYOUT)."""
    weights = _weights(tab, 0)
    x, out, cols = _v4(tab, 6, np.float32), _v3(tab, 7, np.float32), _v3(tab, 8, np.float32)
    bounds = _v2(tab, 9, np.int64)
    if refresh:
        refresh_packing(weights, False)
    wc = weights[4]
    for t in prange(bounds.shape[0]):
        n0, n1 = bounds[t, 0], bounds[t, 1]
        _stamp_start(clock_id, stamps, t)
        conv_cols_packed(sgemm, x[n0:n1], wc, out[n0:n1], cols[t])
        _stamp_end(clock_id, stamps, t)


@njit(**PAR)
def conv_rows_region(sgemm, tab, refresh, clock_id, stamps):
    """Task t: samples bounds[t], chunks[t] samples per GEMM, its own rows/res/img buffers
    (CONV_ROWS_LAYOUT)."""
    f = np.float32
    weights = _weights(tab, 0)
    x, out, rows, res = _v4(tab, 6, f), _v3(tab, 7, f), _v3(tab, 8, f), _v3(tab, 9, f)
    img, chunks, bounds = _v4(tab, 10, f), _v1(tab, 11, np.int64), _v2(tab, 12, np.int64)
    if refresh:
        refresh_packing(weights, True)
    wr = weights[4]
    for t in prange(bounds.shape[0]):
        n0, n1 = bounds[t, 0], bounds[t, 1]
        _stamp_start(clock_id, stamps, t)
        conv_rows_packed(sgemm, x[n0:n1], wr, out[n0:n1], rows[t], res[t], img[t], chunks[t])
        _stamp_end(clock_id, stamps, t)


@njit(**PAR)
def network_region(sgemm, tab, refresh, clock_id, stamps):
    """The network's forward pass (NETWORK_LAYOUT), task t on samples bounds[t]: three conv /
    pool [/ GELU] blocks (w1..w3: their weights as conv_pool_nhwc takes them; per block its
    rows, res and pooled buffers with a task axis, samples per GEMM, whether a GELU follows
    and whether the block runs direct), features, then three linear layers and log-softmax."""
    f = np.float32
    w1, w2, w3 = _weights(tab, 0), _weights(tab, 6), _weights(tab, 12)
    r1, q1, o1 = _v3(tab, 18, f), _v3(tab, 19, f), _v5(tab, 20, f)
    r2, q2, o2 = _v3(tab, 21, f), _v3(tab, 22, f), _v5(tab, 23, f)
    r3, q3, o3 = _v3(tab, 24, f), _v3(tab, 25, f), _v5(tab, 26, f)
    chunks, gelus, direct = _v2(tab, 27, np.int64), _v1(tab, 28, np.bool_), _v1(tab, 29, np.bool_)
    features = _v3(tab, 30, f)
    lw1, lb1, h1 = _v2(tab, 31, f), _v1(tab, 32, f), _v3(tab, 33, f)
    lw2, lb2, h2 = _v2(tab, 34, f), _v1(tab, 35, f), _v3(tab, 36, f)
    lw3, lb3, h3 = _v2(tab, 37, f), _v1(tab, 38, f), _v3(tab, 39, f)
    head_gelus = _v1(tab, 40, np.bool_)
    y, out, bounds = _v4(tab, 41, f), _v2(tab, 42, f), _v2(tab, 43, np.int64)
    if refresh:
        refresh_packing(w1, True)
        refresh_packing(w2, True)
        refresh_packing(w3, True)
    p1, p2, p3 = w1[4], w2[4], w3[4]
    for t in prange(bounds.shape[0]):
        n0, n1 = bounds[t, 0], bounds[t, 1]
        g = n1 - n0
        _stamp_start(clock_id, stamps, t)
        a1, a2, a3 = o1[t, :g], o2[t, :g], o3[t, :g]
        conv_pool_block(sgemm, y[n0:n1], p1, r1[t], q1[t], a1, chunks[t, 0], gelus[0], direct[0])
        conv_pool_block(sgemm, a1, p2, r2[t], q2[t], a2, chunks[t, 1], gelus[1], direct[1])
        conv_pool_block(sgemm, a2, p3, r3[t], q3[t], a3, chunks[t, 2], gelus[2], direct[2])
        feat = features[t, :g]
        flatten_nchw(o3[t, :g], feat)
        linear_act(sgemm, feat, lw1, lb1, head_gelus[0], h1[t, :g])
        linear_act(sgemm, h1[t, :g], lw2, lb2, head_gelus[1], h2[t, :g])
        linear_act(sgemm, h2[t, :g], lw3, lb3, head_gelus[2], h3[t, :g])
        logsoftmax_rows(h3[t, :g], out[n0:n1])
        _stamp_end(clock_id, stamps, t)


def new_stamps(tasks: int) -> np.ndarray:
    return np.zeros((tasks, STAMP_COLUMNS), np.int64)
