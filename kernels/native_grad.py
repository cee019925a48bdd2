"""numba kernels of the backward passes (imported lazily, like `native`).

Every kernel releases the GIL. Patch rows are in the forward's order: one row
per output pixel, columns (kh, kw, c), so the input gradient is the
transpose of patch building: each row's three runs of 3*c floats are added back
into an NHWC image.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .native import _FAST, _JIT, _tanh

_K0 = np.float32(0.7978845608028654)  # sqrt(2/pi)
_K1 = np.float32(0.044715)
_K3 = np.float32(3 * 0.044715)
_HALF = np.float32(0.5)
_ONE = np.float32(1.0)
_ZERO = np.float32(0.0)


@njit(inline="always", **_FAST)
def _gelu_grad(v):
    t = _tanh(_K0 * (v + _K1 * v * v * v))
    return _HALF * (_ONE + t) + _HALF * v * (_ONE - t * t) * _K0 * (_ONE + _K3 * v * v)


@njit(**_FAST)
def gelu_backward_flat(x, gy, gx):
    """gx = gy * GELU'(x) on flat contiguous arrays (gx may be gy)."""
    for i in range(x.shape[0]):
        gx[i] = gy[i] * _gelu_grad(x[i])


@njit(**_FAST)
def gelu_grad_inplace(pre, g):
    """g *= GELU'(pre) for 2-D arrays (rows of a linear layer's output)."""
    for i in range(g.shape[0]):
        p = pre[i]
        r = g[i]
        for k in range(r.shape[0]):
            r[k] = r[k] * _gelu_grad(p[k])


@njit(**_JIT)
def pool_backward_nchw(x, gy, gx):
    """gx (n, c, h, w) of a 2x2 max-pool: each window's gradient to its first maximum; zero
    elsewhere."""
    n, c, oh, ow = gy.shape
    h, w = x.shape[2], x.shape[3]
    for s in range(n):
        for ch in range(c):
            for i in range(h):
                for j in range(w):
                    gx[s, ch, i, j] = _ZERO
            for i in range(oh):
                r0 = x[s, ch, 2 * i]
                r1 = x[s, ch, 2 * i + 1]
                for j in range(ow):
                    best, bi, bj = r0[2 * j], 0, 0
                    if r0[2 * j + 1] > best:
                        best, bi, bj = r0[2 * j + 1], 0, 1
                    if r1[2 * j] > best:
                        best, bi, bj = r1[2 * j], 1, 0
                    if r1[2 * j + 1] > best:
                        best, bi, bj = r1[2 * j + 1], 1, 1
                    gx[s, ch, 2 * i + bi, 2 * j + bj] = gy[s, ch, i, j]


@njit(**_JIT)
def rows_from_nchw(g, rows):
    """g (m, oc, oh, ow; any strides) as rows (m*oh*ow, oc): the layout of the forward's GEMM
    result."""
    m, oc, oh, ow = g.shape
    for s in range(m):
        base = s * oh * ow
        for o in range(oc):
            for i in range(oh):
                for j in range(ow):
                    rows[base + i * ow + j, o] = g[s, o, i, j]


@njit(**_JIT)
def col2im_nchw(grows, img, gx):
    """gx (m, c, h, w; any strides) = the sum of patch-row gradients grows (m*oh*ow, 9c) back into
    the image.

    Each sample is summed NHWC in `img` (h, w, c), then written NCHW.
    """
    m, c, h, w = gx.shape
    oh, ow = h - 2, w - 2
    p = oh * ow
    run = 3 * c
    flat = img.reshape(h, w * c)
    for s in range(m):
        for i in range(h):
            for q in range(w * c):
                flat[i, q] = _ZERO
        for i in range(oh):
            for j in range(ow):
                r = grows[s * p + i * ow + j]
                for kh in range(3):
                    dst = flat[i + kh, j * c : j * c + run]
                    src = r[kh * run : kh * run + run]
                    for q in range(run):
                        dst[q] += src[q]
        for ch in range(c):
            for i in range(h):
                for j in range(w):
                    gx[s, ch, i, j] = img[i, j, ch]
