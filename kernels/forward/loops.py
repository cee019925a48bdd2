"""Loop kernels: the per-pixel / per-element Python loops of the teaching material.

They are the "before vectorization" baseline, slow on purpose and timed for
real. Each checks `cancel` once per output row so a run stops promptly.
"""

from __future__ import annotations

import math

import numpy as np

from partui.kernels.runtime.scratch import Cancelled, Scratch

GELU_C = math.sqrt(2.0 / math.pi)


def check_cancel(cancel) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled()


def conv(x, w, b, out, scratch: Scratch, cancel=None) -> None:
    """One output pixel at a time: the sum of a 3x3xC patch times the filter."""
    n, oc, oh, ow = out.shape
    for s in range(n):
        for o in range(oc):
            check_cancel(cancel)
            filt = w[o]
            bias = float(b[o]) if b is not None else 0.0
            for i in range(oh):
                for j in range(ow):
                    out[s, o, i, j] = np.sum(x[s, :, i : i + 3, j : j + 3] * filt) + bias


def pool(x, out, scratch: Scratch, cancel=None) -> None:
    n, c, oh, ow = out.shape
    for s in range(n):
        for ch in range(c):
            check_cancel(cancel)
            for i in range(oh):
                for j in range(ow):
                    out[s, ch, i, j] = max(
                        x[s, ch, 2 * i, 2 * j],
                        x[s, ch, 2 * i, 2 * j + 1],
                        x[s, ch, 2 * i + 1, 2 * j],
                        x[s, ch, 2 * i + 1, 2 * j + 1],
                    )


def gelu_scalar(v: float) -> float:
    return 0.5 * v * (1.0 + math.tanh(GELU_C * (v + 0.044715 * v * v * v)))


def gelu(x, out, scratch: Scratch, cancel=None) -> None:
    """One element at a time; `out` may be `x`."""
    for lead in np.ndindex(out.shape[:-1]):
        check_cancel(cancel)
        src, dst = x[lead], out[lead]
        for j in range(dst.shape[0]):
            dst[j] = gelu_scalar(float(src[j]))


def linear(x, w, b, apply_gelu: bool, out, scratch: Scratch, cancel=None) -> None:
    """One output neuron at a time: a dot product of the input and a weight row."""
    n, nout = out.shape
    for s in range(n):
        check_cancel(cancel)
        for o in range(nout):
            v = float(np.dot(x[s], w[o]))
            if b is not None:
                v += float(b[o])
            out[s, o] = gelu_scalar(v) if apply_gelu else v


def logsoftmax(x, out, scratch: Scratch, cancel=None) -> None:
    n, f = out.shape
    for s in range(n):
        check_cancel(cancel)
        row = [float(v) for v in x[s]]
        m = max(row)
        lse = m + math.log(sum(math.exp(v - m) for v in row))
        for j in range(f):
            out[s, j] = row[j] - lse
