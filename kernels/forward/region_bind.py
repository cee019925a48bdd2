"""A repeat's tasks bound as one native parallel region (kernels.forward.region): what it
can run, and the call with every argument made once.

It runs the vectorized kernel's convolutions and the whole network, cut by samples
(`batch`, or `none`: one task), forward: each task is then a contiguous run of samples
writing its own planes, and one kernel serves all of them. Anything else is refused before
a run starts (kernels.plan.axes, REGION_KINDS and REGION_STRATEGIES).
"""

from __future__ import annotations

import numpy as np

from partui.kernels.forward import vectorized
from partui.kernels.model.layers import Layer, prod
from partui.kernels.runtime.native_clock import native_clock
from partui.kernels.runtime.scratch import Scratch, reshaped_view


class Region:
    """The tasks of one phase as one native call: `run(refresh)` runs them all on numba's
    threads, checking the weights against their packed copy first if `refresh` (they may have
    changed since the last call); afterwards `stamps[i]` holds task i's start_ns, end_ns,
    pool thread and native id."""

    def __init__(self, fn, args: tuple, tasks: int, keep: tuple = ()):
        from partui.kernels.forward.region import new_stamps

        self.stamps = new_stamps(tasks)
        clock, reason = native_clock()
        if clock is None:
            raise RuntimeError(f"no native clock: {reason}")
        self._fn, self._args, self._clock_id = fn, args, clock.clock_id
        self._keep = keep  # the arrays a table's addresses point into, alive while it is

    def run(self, refresh: bool = True) -> None:
        self._fn(*self._args, refresh, self._clock_id, self.stamps)


def _tabled(fn, sgemm, arrays: list, layout: tuple, tasks: int) -> Region | None:
    """A region whose arrays go in as one table (kernels.forward.region): each array's
    address and shape, checked against the region's layout (dimensions, dtype, C order, as
    the region reads them back), or None if one does not fit it."""
    from partui.kernels.forward.region import TABLE_COLUMNS

    if len(arrays) != len(layout):
        return None
    table = np.zeros((len(arrays), TABLE_COLUMNS), np.int64)
    for row, (a, (ndim, dtype)) in zip(table, zip(arrays, layout)):
        if a.ndim != ndim or a.dtype != dtype or not a.flags.c_contiguous:
            return None
        row[0] = a.ctypes.data
        row[1 : 1 + ndim] = a.shape
    return Region(fn, (sgemm, table), tasks, keep=tuple(arrays))


def empty(tasks: int) -> Region:
    """`tasks` empty tasks: the region's own cost per repeat."""
    from partui.kernels.forward import region

    return Region(region.empty_region, (tasks,), tasks)


def bind(layer: Layer, arrays: dict[str, np.ndarray], tasks, scratch: Scratch) -> Region | None:
    """The phase's tasks (contiguous sample ranges) as one Region, or None when their arrays
    do not allow it (no native sgemm, a region that cannot be seen as planes, an array not
    in C order)."""
    sgemm = vectorized._sgemm()
    if sgemm is None or not tasks:
        return None
    ranges = [t.batch for t in tasks]
    if any(t.phase or t.group is not None or t.partial is not None for t in tasks):
        return None  # not whole samples: a strategy the axes refuse
    if layer.kind == "conv":
        return _conv(sgemm, arrays, ranges, scratch)
    if layer.kind == "network":
        return _network(sgemm, arrays, ranges, scratch)
    return None


def _bounds(ranges) -> np.ndarray:
    return np.array(ranges, dtype=np.int64).reshape(len(ranges), 2)


def _conv(sgemm, arrays, ranges, scratch: Scratch) -> Region | None:
    from partui.kernels.forward import region

    x, w, b, out = arrays["x"], arrays["weight"], arrays.get("bias"), arrays["out"]
    n, c, h, wd = x.shape
    oc, p, k1 = w.shape[0], (h - 2) * (wd - 2), 9 * c + 1
    planes = reshaped_view(out, (n, oc, p))
    if planes is None:
        return None
    most = max(n1 - n0 for n0, n1 in ranges)
    per_sample, m, _ = vectorized.conv_choices(c, h, wd, oc, most)  # one call per task here
    weights = vectorized._native_weights(scratch, "region.w", w, b, rows=not per_sample)
    if weights is None:
        return None
    tasks, bounds = len(ranges), _bounds(ranges)
    if per_sample:
        from partui.kernels.forward.native import cols_width

        cols = scratch.get("region.cols", (tasks, k1, cols_width(h, wd)))
        arrays = [*weights, x, planes, cols, bounds]
        return _tabled(region.conv_cols_region, sgemm, arrays, region.CONV_COLS_LAYOUT, tasks)
    chunks = np.array([min(m, n1 - n0) for n0, n1 in ranges], dtype=np.int64)
    buffers = (
        scratch.get("region.rows", (tasks, m * p, k1)),
        scratch.get("region.res", (tasks, m * p, oc)),
        scratch.get("region.img", (tasks, h, wd, c)),
    )
    arrays = [*weights, x, planes, *buffers, chunks, bounds]
    return _tabled(region.conv_rows_region, sgemm, arrays, region.CONV_ROWS_LAYOUT, tasks)


def _network(sgemm, arrays, ranges, scratch: Scratch) -> Region | None:
    from partui.kernels.forward import region

    x, out = arrays["x"], arrays["out"]
    n, c, h, w = x.shape
    blocks, head = vectorized.BLOCKS, vectorized.HEAD
    if (
        blocks is None
        or len(blocks) != 3
        or tuple(s.kind for s in head) != ("linear", "linear", "linear", "logsoftmax")
        or c != 1
        or not x.flags.c_contiguous
    ):
        return None
    linears = [(arrays[f"{s.name}.weight"], arrays[f"{s.name}.bias"], s) for s in head[:-1]]
    if not all(vectorized._blas_matrix(lw) for lw, _, _ in linears):
        return None
    tasks, most = len(ranges), max(n1 - n0 for n0, n1 in ranges)
    weights: list = []
    trunk, chunks = [], np.zeros((tasks, 3), np.int64)
    direct = np.array([vectorized.network_direct(cv) for cv, _, _ in blocks], dtype=np.bool_)
    for k, (cv, pl, _) in enumerate(blocks):
        wts = vectorized._native_weights(
            scratch,
            f"region.{cv.name}.w",
            arrays[f"{cv.name}.weight"],
            arrays[f"{cv.name}.bias"],
            True,
        )
        if wts is None:
            return None
        weights += wts
        oc = cv.out_shape[0]
        rows, res, m = vectorized.block_buffers(cv, most, bool(direct[k]))
        chunks[:, k] = [min(m, n1 - n0) for n0, n1 in ranges]
        pooled = (tasks, most, pl.out_shape[1], pl.out_shape[2], oc)
        trunk += [
            scratch.get(f"region.{cv.name}.rows", (tasks, *rows)),
            scratch.get(f"region.{cv.name}.res", (tasks, *res)),
            scratch.get(f"region.{pl.name}.out", pooled),
        ]
    gelus = np.array([g for _, _, g in blocks], dtype=np.bool_)
    features = scratch.get("region.features", (tasks, most, prod(blocks[-1][1].out_shape)))
    tail: list = [features]
    for lw, lb, s in linears:
        tail += [lw, lb, scratch.get(f"region.{s.name}", (tasks, most, *s.out_shape))]
    tail.append(np.array([s.gelu for _, _, s in linears], dtype=np.bool_))
    y0 = x.reshape(n, h, w, 1)  # one channel: NCHW and NHWC are the same bytes
    arrays = [*weights, *trunk, chunks, gelus, direct, *tail, y0, out, _bounds(ranges)]
    return _tabled(region.network_region, sgemm, arrays, region.NETWORK_LAYOUT, tasks)
