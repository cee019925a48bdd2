"""Traversal order: a C-ordered matrix by rows or by columns; a convolution in NCHW or NHWC.

The convolution is the per-pixel patch dot product of the source material: for each output
pixel, the 3x3xC patch under it times each filter. Each layout walks its patch in its own
memory order: NHWC reads three runs of 3*C contiguous floats, NCHW reads C*3 runs of three.
"""

from __future__ import annotations

from functools import cache

import numpy as np


def sum_rows(m):
    """Sum of a 2-D array visiting m[i, 0], m[i, 1], ... (contiguous in C order)."""
    s = 0.0
    rows, cols = m.shape
    for i in range(rows):
        for j in range(cols):
            s += m[i, j]
    return s


def sum_columns(m):
    """Sum of a 2-D array visiting m[0, j], m[1, j], ... (a whole row apart each step)."""
    s = 0.0
    rows, cols = m.shape
    for j in range(cols):
        for i in range(rows):
            s += m[i, j]
    return s


def numpy_sum_rows(m):
    """One numpy call per row: contiguous slices."""
    s = 0.0
    for i in range(m.shape[0]):
        s += float(m[i, :].sum())
    return s


def numpy_sum_columns(m):
    """One numpy call per column: strided slices."""
    s = 0.0
    for j in range(m.shape[1]):
        s += float(m[:, j].sum())
    return s


def conv_nchw(x, w, out):
    """x (N, C, H, W), w (O, C, 3, 3) -> out (N, O, H-2, W-2), no bias."""
    n_, c_, h_, w_ = x.shape
    o_ = w.shape[0]
    for n in range(n_):
        for y in range(h_ - 2):
            for xx in range(w_ - 2):
                for o in range(o_):
                    acc = np.float32(0.0)
                    for c in range(c_):
                        for ky in range(3):
                            for kx in range(3):
                                acc += x[n, c, y + ky, xx + kx] * w[o, c, ky, kx]
                    out[n, o, y, xx] = acc


def conv_nhwc(x, w, out):
    """x (N, H, W, C), w (O, 3, 3, C) -> out (N, H-2, W-2, O), no bias."""
    n_, h_, w_, c_ = x.shape
    o_ = w.shape[0]
    for n in range(n_):
        for y in range(h_ - 2):
            for xx in range(w_ - 2):
                for o in range(o_):
                    acc = np.float32(0.0)
                    for ky in range(3):
                        for kx in range(3):
                            for c in range(c_):
                                acc += x[n, y + ky, xx + kx, c] * w[o, ky, kx, c]
                    out[n, y, xx, o] = acc


@cache
def native():
    from partui.kernels.lab.jit import compile_all

    return compile_all(sum_rows, sum_columns, conv_nchw, conv_nhwc, fastmath=True)
