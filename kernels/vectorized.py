"""Vectorized kernels: numpy and BLAS, writing into the output view they are given.

Every function computes exactly the region it is handed (`out` is a view into
the run's preallocated output), so strategies cut work without copies back.
"""
from __future__ import annotations

import numpy as np

from .scratch import Scratch, reshaped_view

SQRT_2_OVER_PI = np.float32(np.sqrt(2.0 / np.pi))


def conv(x, w, b, out, scratch: Scratch, cancel=None) -> None:
    """3x3 valid convolution of x (n, c, h, w) into out (n, oc, h-2, w-2): im2col + GEMM.

    The patch matrix is built per task (in the worker that runs it), so building
    it is split between workers like the GEMM itself.
    """
    n, c, h, wd = x.shape
    oc = w.shape[0]
    oh, ow = h - 2, wd - 2
    k, p = c * 9, oh * ow
    cols = scratch.get("conv.cols", (n, c, 3, 3, oh, ow))
    for kh in range(3):
        for kw in range(3):
            cols[:, :, kh, kw] = x[:, :, kh:kh + oh, kw:kw + ow]
    w2 = np.ascontiguousarray(w).reshape(oc, k)
    res = reshaped_view(out, (n, oc, p))
    if res is None:  # a region that cannot be seen flat: compute, then copy in
        res = scratch.get("conv.res", (n, oc, p))
        np.matmul(w2, cols.reshape(n, k, p), out=res)
        out[...] = res.reshape(out.shape)
        res = None
    else:
        np.matmul(w2, cols.reshape(n, k, p), out=res)
    if b is not None:
        out += b[:, None, None]


def pool(x, out, scratch: Scratch, cancel=None) -> None:
    """2x2 max-pool (floor) as the max of four strided views."""
    r, ow = out.shape[2], out.shape[3]
    np.maximum(x[:, :, 0:2 * r:2, 0:2 * ow:2], x[:, :, 0:2 * r:2, 1:2 * ow:2], out=out)
    np.maximum(out, x[:, :, 1:2 * r:2, 0:2 * ow:2], out=out)
    np.maximum(out, x[:, :, 1:2 * r:2, 1:2 * ow:2], out=out)


def gelu(x, out, scratch: Scratch, cancel=None) -> None:
    """tanh-approximation GELU; `out` may be `x` (in place). One scratch buffer, no temporaries."""
    t = scratch.get("gelu.t", x.shape)
    np.multiply(x, x, out=t)
    t *= x
    t *= np.float32(0.044715)
    t += x
    t *= SQRT_2_OVER_PI
    np.tanh(t, out=t)
    t += np.float32(1.0)
    t *= np.float32(0.5)
    np.multiply(x, t, out=out)


def linear(x, w, b, apply_gelu: bool, out, scratch: Scratch, cancel=None) -> None:
    """x (n, in) @ w.T (in, out) [+ b] [then GELU], written into out (n, out)."""
    np.matmul(x, w.T, out=out)
    if b is not None:
        out += b
    if apply_gelu:
        gelu(out, out, scratch)


def logsoftmax(x, out, scratch: Scratch, cancel=None) -> None:
    """Numerically stable: subtract the row max before exp."""
    np.subtract(x, x.max(axis=1, keepdims=True), out=out)
    t = scratch.get("logsoftmax.t", out.shape)
    np.exp(out, out=t)
    out -= np.log(t.sum(axis=1, keepdims=True))
