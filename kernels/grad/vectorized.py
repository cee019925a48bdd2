"""Vectorized backward kernels: numpy/BLAS GEMMs, numba for routing and patch sums.

The same contract as the forward kernels: each call computes exactly the region
it is handed and writes (never accumulates into) its outputs, so a strategy can
cut the work and a combination step can sum the partial gradients.

- convolution: the forward's patch rows (ones column last) times the upstream
  gradient give the weight and bias gradients in one GEMM; the upstream
  gradient times the packed weights gives patch-row gradients, summed back
  into the image (col2im). The input gradient is skipped when `gx` is None
  (the first layer of the network needs none).
- max-pool: one numba pass routes each window's gradient to its first maximum,
  found again from the input (no argmax array kept).
- GELU: one numba pass, with the forward's rational tanh.
- linear: three GEMMs; a fused GELU multiplies the upstream gradient by GELU'
  of the pre-activation first (recomputed when not handed in).
- log-softmax: gx = gy - softmax * sum(gy); with the NLL loss, softmax - onehot.
"""

from __future__ import annotations

import numpy as np

from partui.kernels.forward import vectorized
from partui.kernels.forward.vectorized import check_cancel, chunk_size
from partui.kernels.runtime.scratch import Scratch


def _nat():
    from partui.kernels.grad import native as native_grad  # numba: imported on first use

    return native_grad


def _native():
    from partui.kernels.forward import native

    return native


# ---- convolution ----------------------------------------------------------------


def conv_backward(x, w, gy, gx, gw, gb, scratch: Scratch, cancel=None) -> None:
    """3x3 valid convolution: gw (oc, c, 3, 3), gb (oc,) and, unless None, gx (n, c, h, w)."""
    n, c, h, wd = x.shape
    oc = w.shape[0]
    oh, ow = h - 2, wd - 2
    p, k = oh * ow, 9 * c
    m = chunk_size(n, p * (k + 1 + oc + (k if gx is not None else 0)) * 4)
    rows = scratch.get("bconv.rows", (m * p, k + 1))
    gyr = scratch.get("bconv.gyr", (m * p, oc))
    gwr = scratch.get("bconv.gwr", (k + 1, oc))
    tmp = scratch.get("bconv.tmp", (k + 1, oc))
    img = scratch.get("bconv.img", (h, wd, c))
    if gx is not None:
        wt = scratch.get("bconv.wt", (oc, k))
        wt.reshape(oc, 3, 3, c)[...] = w.transpose(0, 2, 3, 1)  # columns in patch-row order
        grows = scratch.get("bconv.grows", (m * p, k))
    nat, native = _nat(), _native()
    for s0 in range(0, n, m):
        check_cancel(cancel)
        s1 = min(n, s0 + m)
        r, g = rows[: (s1 - s0) * p], gyr[: (s1 - s0) * p]
        native.im2row_nchw(x[s0:s1], img, r)
        nat.rows_from_nchw(gy[s0:s1], g)
        if s0 == 0:
            np.matmul(r.T, g, out=gwr)
        else:
            np.matmul(r.T, g, out=tmp)
            gwr += tmp
        if gx is not None:
            gr = grows[: (s1 - s0) * p]
            np.matmul(g, wt, out=gr)
            nat.col2im_nchw(gr, img, gx[s0:s1])
    if n == 0:
        gwr.fill(0.0)
    gw[...] = gwr[:k].reshape(3, 3, c, oc).transpose(3, 2, 0, 1)
    gb[...] = gwr[k]


# ---- max-pool and GELU ----------------------------------------------------------


def pool_backward(x, gy, gx, scratch: Scratch, cancel=None) -> None:
    """2x2 max-pool (floor): gx (n, c, h, w) from the input x and the upstream gy (n, c, h//2,
    w//2)."""
    _nat().pool_backward_nchw(x, gy, gx)


def gelu_backward(x, gy, gx, scratch: Scratch, cancel=None) -> None:
    """gx = gy * GELU'(x); `gx` may be `gy` (in place)."""
    if all(a.flags.c_contiguous and a.dtype == np.float32 for a in (x, gy, gx)):
        _nat().gelu_backward_flat(x.reshape(-1), gy.reshape(-1), gx.reshape(-1))
        return
    xs = np.ascontiguousarray(x, dtype=np.float32)
    g = np.ascontiguousarray(gy, dtype=np.float32).copy()
    _nat().gelu_backward_flat(xs.reshape(-1), g.reshape(-1), g.reshape(-1))
    gx[...] = g


# ---- linear -----------------------------------------------------------------------


def linear_backward(
    x, w, b, gy, apply_gelu: bool, gx, gw, gb, scratch: Scratch, cancel=None, pre=None
) -> None:
    """y = [GELU](x @ w.T + b): gx (n, in) unless None, gw (out, in), gb (out,).

    With GELU, `pre` is the pre-activation x @ w.T + b when the caller kept it.
    """
    if apply_gelu:
        n, nout = gy.shape
        if pre is None:
            pre = scratch.get("blinear.pre", (n, nout))
            vectorized.linear(x, w, b, False, pre, scratch)
        g = scratch.get("blinear.g", (n, nout))
        g[...] = gy
        _nat().gelu_grad_inplace(pre, g)
        gy = g
    if gx is not None:
        np.matmul(gy, w, out=gx)
    np.matmul(gy.T, x, out=gw)
    np.sum(gy, axis=0, out=gb)


# ---- log-softmax and the loss ----------------------------------------------------


def logsoftmax_backward(x, gy, gx, scratch: Scratch, cancel=None, y=None) -> None:
    """gx = gy - softmax(x) * sum(gy) per row; `y` is the forward's output when kept."""
    n, f = gy.shape
    if y is None:
        y = scratch.get("blsm.y", (n, f))
        vectorized.logsoftmax(x, y, scratch)
    sm = scratch.get("blsm.sm", (n, f))
    np.exp(y, out=sm)
    sm *= gy.sum(axis=1, keepdims=True)
    np.subtract(gy, sm, out=gx)


def nll_backward(logp, labels, gx, scale: float) -> float:
    """gx = scale * (softmax - onehot(labels)) for log-probabilities logp (n, classes).

    Returns the summed negative log-likelihood of the rows (the caller scales it).
    """
    rows = np.arange(logp.shape[0])
    idx = labels.astype(np.int64)
    picked = logp[rows, idx]
    np.exp(logp, out=gx)
    gx[rows, idx] -= 1.0
    gx *= np.float32(scale)
    return float(-picked.astype(np.float64).sum())
