"""Loop backward kernels: the per-pixel / per-element loops of the teaching material.

The "before vectorization" baseline of the backward pass, with the same
signatures as `grad_vectorized`. Each checks `cancel` once per output row.
"""

from __future__ import annotations

import math

import numpy as np

from partui.kernels.forward.loops import GELU_C, check_cancel, gelu_scalar
from partui.kernels.runtime.scratch import Scratch


def _gelu_grad_scalar(v: float) -> float:
    t = math.tanh(GELU_C * (v + 0.044715 * v * v * v))
    return 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * GELU_C * (1.0 + 3 * 0.044715 * v * v)


def conv_backward(x, w, gy, gx, gw, gb, scratch: Scratch, cancel=None) -> None:
    """One output pixel at a time: its gradient times the patch (gw) and times the filter (gx)."""
    n, oc, oh, ow = gy.shape
    gw_acc = np.zeros(gw.shape, dtype=np.float64)
    gb_acc = np.zeros(gb.shape, dtype=np.float64)
    if gx is not None:
        gx[...] = 0.0
    for s in range(n):
        for o in range(oc):
            check_cancel(cancel)
            filt = w[o]
            for i in range(oh):
                for j in range(ow):
                    g = float(gy[s, o, i, j])
                    gb_acc[o] += g
                    gw_acc[o] += g * x[s, :, i : i + 3, j : j + 3]
                    if gx is not None:
                        gx[s, :, i : i + 3, j : j + 3] += g * filt
    gw[...] = gw_acc
    gb[...] = gb_acc


def pool_backward(x, gy, gx, scratch: Scratch, cancel=None) -> None:
    n, c, oh, ow = gy.shape
    gx[...] = 0.0
    for s in range(n):
        for ch in range(c):
            check_cancel(cancel)
            for i in range(oh):
                for j in range(ow):
                    best, bi, bj = x[s, ch, 2 * i, 2 * j], 0, 0
                    for di, dj in ((0, 1), (1, 0), (1, 1)):
                        v = x[s, ch, 2 * i + di, 2 * j + dj]
                        if v > best:
                            best, bi, bj = v, di, dj
                    gx[s, ch, 2 * i + bi, 2 * j + bj] = gy[s, ch, i, j]


def gelu_backward(x, gy, gx, scratch: Scratch, cancel=None) -> None:
    """One element at a time; `gx` may be `gy`."""
    for lead in np.ndindex(gx.shape[:-1]):
        check_cancel(cancel)
        src, g, dst = x[lead], gy[lead], gx[lead]
        for j in range(dst.shape[0]):
            dst[j] = float(g[j]) * _gelu_grad_scalar(float(src[j]))


def linear_backward(
    x, w, b, gy, apply_gelu: bool, gx, gw, gb, scratch: Scratch, cancel=None, pre=None
) -> None:
    """One output neuron at a time: its gradient times the input row (gw) and the weight row
    (gx)."""
    n, nout = gy.shape
    gw_acc = np.zeros(gw.shape, dtype=np.float64)
    gb_acc = np.zeros(gb.shape, dtype=np.float64)
    if gx is not None:
        gx[...] = 0.0
    for s in range(n):
        check_cancel(cancel)
        for o in range(nout):
            g = float(gy[s, o])
            if apply_gelu:
                v = float(pre[s, o]) if pre is not None else float(np.dot(x[s], w[o])) + float(b[o])
                g *= _gelu_grad_scalar(v)
            gb_acc[o] += g
            gw_acc[o] += g * x[s]
            if gx is not None:
                gx[s] += g * w[o]
    gw[...] = gw_acc
    gb[...] = gb_acc


def logsoftmax_backward(x, gy, gx, scratch: Scratch, cancel=None, y=None) -> None:
    n, f = gy.shape
    for s in range(n):
        check_cancel(cancel)
        if y is None:
            row = [float(v) for v in x[s]]
            m = max(row)
            lse = m + math.log(sum(math.exp(v - m) for v in row))
            probs = [math.exp(v - lse) for v in row]
        else:
            probs = [math.exp(float(v)) for v in y[s]]
        total = sum(float(v) for v in gy[s])
        for j in range(f):
            gx[s, j] = float(gy[s, j]) - probs[j] * total


def nll_backward(logp, labels, gx, scale: float) -> float:
    """gx = scale * (softmax - onehot(labels)); returns the summed NLL of the rows."""
    n, f = logp.shape
    loss = 0.0
    for s in range(n):
        label = int(labels[s])
        loss -= float(logp[s, label])
        for j in range(f):
            gx[s, j] = scale * (math.exp(float(logp[s, j])) - (1.0 if j == label else 0.0))
    return loss


__all__ = [
    "conv_backward",
    "pool_backward",
    "gelu_backward",
    "linear_backward",
    "logsoftmax_backward",
    "nll_backward",
    "gelu_scalar",
]
