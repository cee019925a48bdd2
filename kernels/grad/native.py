"""numba kernels of the backward passes (imported lazily, like `native`).

Every kernel releases the GIL. Patch rows are in the forward's order: one row
per output pixel, columns (kh, kw, c), so the input gradient is the
transpose of patch building: each row's three runs of 3*c floats are added back
into an NHWC image.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from partui.kernels.forward.native import (
    FAST,
    JIT,
    gelu_scalar,
    im2row_nhwc,
    max_scalar,
    refresh_packing,
    tanh_scalar,
)
from partui.kernels.runtime import atomics

atomics.register()  # atomic_add compiles to LLVM's atomicrmw in the kernels below

_K0 = np.float32(0.7978845608028654)  # sqrt(2/pi)
_K1 = np.float32(0.044715)
_K3 = np.float32(3 * 0.044715)
_HALF = np.float32(0.5)
_ONE = np.float32(1.0)
_ZERO = np.float32(0.0)


@njit(inline="always", **FAST)
def _gelu_grad(v):
    t = tanh_scalar(_K0 * (v + _K1 * v * v * v))
    return _HALF * (_ONE + t) + _HALF * v * (_ONE - t * t) * _K0 * (_ONE + _K3 * v * v)


@njit(**FAST)
def gelu_backward_flat(x, gy, gx):
    """gx = gy * GELU'(x) on flat contiguous arrays (gx may be gy)."""
    for i in range(x.shape[0]):
        gx[i] = gy[i] * _gelu_grad(x[i])


@njit(**FAST)
def gelu_grad_inplace(pre, g):
    """g *= GELU'(pre) for 2-D arrays (rows of a linear layer's output)."""
    for i in range(g.shape[0]):
        p = pre[i]
        r = g[i]
        for k in range(r.shape[0]):
            r[k] = r[k] * _gelu_grad(p[k])


@njit(**JIT)
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


@njit(**JIT)
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


@njit(**JIT)
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


# ---- the network's training step on one slice, without the GIL -------------------------
#
# The slice's forward (keeping what the backward needs), its loss and its backward are two
# native calls that call numpy's own sgemm from inside (`native.load_sgemm`): no numpy call
# between steps holds the interpreter lock, so two worker threads run side by side.
#
# The trunk is kept NHWC, as the fused forward keeps it: a convolution's GEMM result has
# one row per output pixel (its channels contiguous), a pool keeps the index (0..3, row-major
# in its window) of each window's first maximum, and the block's output is GELU of the pooled
# value (which the backward needs for GELU').

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


@njit(inline="always", **JIT)
def _mm(sgemm, a, trans_a, b, trans_b, c, beta):
    """c = op(a) @ op(b) + beta * c, row-major, every matrix with a unit inner stride."""
    m, n = c.shape
    k = a.shape[0] if trans_a else a.shape[1]
    sgemm(
        _ROW_MAJOR,
        _TRANS if trans_a else _NO_TRANS,
        _TRANS if trans_b else _NO_TRANS,
        m,
        n,
        k,
        _ONE,
        a.ctypes.data,
        a.strides[0] // 4,
        b.ctypes.data,
        b.strides[0] // 4,
        beta,
        c.ctypes.data,
        c.strides[0] // 4,
    )


@njit(**FAST)
def _block_forward(sgemm, y, packed, rows, res, p, a, idx, m, apply_gelu):
    """conv 3x3 (bias in `packed`'s last row) + 2x2 max-pool [+ GELU] of NHWC y (n, h, w, c),
    m samples at a time: p (n, ph, pw, oc) the pooled values, idx their window positions,
    a = GELU(p) (the block's output; p itself without GELU)."""
    n, h, w, c = y.shape
    oh, ow = h - 2, w - 2
    pix = oh * ow
    oc = packed.shape[1]
    ph, pw = p.shape[1], p.shape[2]
    for s0 in range(0, n, m):
        s1 = min(n, s0 + m)
        r = rows[: (s1 - s0) * pix]
        q = res[: (s1 - s0) * pix]
        im2row_nhwc(y[s0:s1], r)
        _mm(sgemm, r, False, packed, False, q, _ZERO)
        for s in range(s1 - s0):
            base = s * pix
            for i in range(ph):
                for j in range(pw):
                    v00 = q[base + 2 * i * ow + 2 * j]
                    v01 = q[base + 2 * i * ow + 2 * j + 1]
                    v10 = q[base + (2 * i + 1) * ow + 2 * j]
                    v11 = q[base + (2 * i + 1) * ow + 2 * j + 1]
                    po = p[s0 + s, i, j]
                    io = idx[s0 + s, i, j]
                    for k in range(oc):
                        best, at = v00[k], 0
                        if v01[k] > best:
                            best, at = v01[k], 1
                        if v10[k] > best:
                            best, at = v10[k], 2
                        if v11[k] > best:
                            at = 3
                        io[k] = at
                        po[k] = max_scalar(max_scalar(v00[k], v01[k]), max_scalar(v10[k], v11[k]))
                    ao = a[s0 + s, i, j]
                    if apply_gelu:
                        for k in range(oc):
                            ao[k] = gelu_scalar(po[k])
                    else:
                        for k in range(oc):
                            ao[k] = po[k]


@njit(**JIT)
def _col2im_nhwc(grows, gx):
    """gx (m, h, w, c) NHWC: the patch-row gradients grows (m*oh*ow, 9c) summed into the image."""
    m, h, w, c = gx.shape
    oh, ow = h - 2, w - 2
    pix = oh * ow
    run = 3 * c
    for s in range(m):
        flat = gx[s].reshape(h, w * c)
        for i in range(h):
            for q in range(w * c):
                flat[i, q] = _ZERO
        for i in range(oh):
            for j in range(ow):
                r = grows[s * pix + i * ow + j]
                for kh in range(3):
                    dst = flat[i + kh, j * c : j * c + run]
                    src = r[kh * run : kh * run + run]
                    for q in range(run):
                        dst[q] += src[q]


@njit(**FAST)
def _block_backward(sgemm, y, packed, rows, gres, grows, gwr, p, idx, ga, gy, m, apply_gelu):
    """Backward of `_block_forward`: ga (n, ph, pw, oc), the gradient of the block's output
    (overwritten with that of p), gives gwr (9c+1, oc) = the weight and bias gradients in
    patch-row order and, when gy has samples, gy (n, h, w, c) NHWC, the input's gradient."""
    n, h, w, c = y.shape
    oh, ow = h - 2, w - 2
    pix = oh * ow
    oc = packed.shape[1]
    ph, pw = p.shape[1], p.shape[2]
    k9 = 9 * c
    if apply_gelu:
        for s in range(n):
            for i in range(ph):
                for j in range(pw):
                    g, pv = ga[s, i, j], p[s, i, j]
                    for k in range(oc):
                        g[k] = g[k] * _gelu_grad(pv[k])
    wt = packed[:k9]
    for s0 in range(0, n, m):
        s1 = min(n, s0 + m)
        q = gres[: (s1 - s0) * pix]
        for s in range(s1 - s0):
            base = s * pix
            if oh > 2 * ph:  # the rows and columns no window covers get no gradient
                for t in range(2 * ph * ow, pix):
                    q[base + t, :] = _ZERO
            if ow > 2 * pw:
                for i in range(2 * ph):
                    q[base + i * ow + ow - 1, :] = _ZERO
            # q indexed in two dimensions and 32-bit positions: the loop over channels then
            # vectorizes (row views and byte positions keep it scalar)
            for i in range(ph):
                r0 = base + 2 * i * ow
                r1 = r0 + ow
                for j in range(pw):
                    g, at = ga[s0 + s, i, j], idx[s0 + s, i, j]
                    for k in range(oc):
                        v, t = g[k], at[k]
                        q[r0 + 2 * j, k] = v if t == 0 else _ZERO
                        q[r0 + 2 * j + 1, k] = v if t == 1 else _ZERO
                        q[r1 + 2 * j, k] = v if t == 2 else _ZERO
                        q[r1 + 2 * j + 1, k] = v if t == 3 else _ZERO
        r = rows[: (s1 - s0) * pix]
        im2row_nhwc(y[s0:s1], r)
        _mm(sgemm, r, True, q, False, gwr, _ZERO if s0 == 0 else _ONE)
        if gy.shape[0] > 0:
            gr = grows[: (s1 - s0) * pix]
            _mm(sgemm, q, False, wt, True, gr, _ZERO)
            _col2im_nhwc(gr, gy[s0:s1])
    if n == 0:
        gwr[:, :] = _ZERO


@njit(**JIT)
def _unpack_conv_grads(gwr, gw, gb):
    """gwr (9c+1, oc) in patch-row order (kh, kw, c; bias last) as gw (oc, c, 3, 3), gb (oc,)."""
    oc, c = gw.shape[0], gw.shape[1]
    for kh in range(3):
        for kw in range(3):
            for ch in range(c):
                src = gwr[(kh * 3 + kw) * c + ch]
                for o in range(oc):
                    gw[o, ch, kh, kw] = src[o]
    for o in range(oc):
        gb[o] = gwr[9 * c, o]


@njit(**FAST)
def _linear_forward(sgemm, x, w, b, pre, out, apply_gelu):
    """pre = x @ w.T + b, out = GELU(pre) (out unused without GELU)."""
    _mm(sgemm, x, False, w, True, pre, _ZERO)
    for i in range(pre.shape[0]):
        r = pre[i]
        for k in range(r.shape[0]):
            r[k] = r[k] + b[k]
        if apply_gelu:
            o = out[i]
            for k in range(r.shape[0]):
                o[k] = gelu_scalar(r[k])


@njit(**FAST)
def _linear_backward(sgemm, x, w, g, gw, gb, gx):
    """gw = g.T @ x, gb = the column sums of g, and gx = g @ w when gx has rows."""
    _mm(sgemm, g, True, x, False, gw, _ZERO)
    for k in range(gb.shape[0]):
        gb[k] = _ZERO
    for i in range(g.shape[0]):
        r = g[i]
        for k in range(gb.shape[0]):
            gb[k] += r[k]
    if gx.shape[0] > 0:
        _mm(sgemm, g, False, w, False, gx, _ZERO)


@njit(**FAST)
def _gelu_grad_rows(pre, g):
    for i in range(g.shape[0]):
        p, r = pre[i], g[i]
        for k in range(r.shape[0]):
            r[k] = r[k] * _gelu_grad(p[k])


@njit(**JIT)
def _nll_grad(z, labels, scale, g):
    """Log-softmax of the logits z (n, classes), NLL loss against labels: g = scale * (softmax -
    onehot); returns (summed NLL, correct predictions: the first largest logit is the label)."""
    n, classes = z.shape
    loss = 0.0
    correct = 0
    for i in range(n):
        r = z[i]
        top, best = r[0], 0
        for k in range(1, classes):
            if r[k] > top:
                top, best = r[k], k
        total = _ZERO
        for k in range(classes):
            total += np.exp(r[k] - top)
        lse = np.log(total)
        lab = int(labels[i])
        correct += best == lab
        gi = g[i]
        for k in range(classes):
            logp = r[k] - top - lse
            if k == lab:
                loss -= np.float64(logp)
                gi[k] = np.float32(scale) * (np.exp(logp) - _ONE)
            else:
                gi[k] = np.float32(scale) * np.exp(logp)
    return loss, correct


@njit(**JIT)
def _nhwc_to_rows(a, f):
    """NHWC a (n, h, w, c) flattened in NCHW order into f (n, c*h*w): the head's input."""
    n, h, w, c = a.shape
    for s in range(n):
        for i in range(h):
            for j in range(w):
                for ch in range(c):
                    f[s, (ch * h + i) * w + j] = a[s, i, j, ch]


@njit(**JIT)
def _rows_to_nhwc(f, a):
    n, h, w, c = a.shape
    for s in range(n):
        for i in range(h):
            for j in range(w):
                for ch in range(c):
                    a[s, i, j, ch] = f[s, (ch * h + i) * w + j]


@njit(**FAST)
def network_train_forward(sgemm, x, labels, scale, c1, c2, c3, b1, b2, b3, l1, l2, l3, feats):
    """The forward half of a training step on a slice x (n, h, w, 1) NHWC: three conv blocks,
    three linear layers, log-softmax and the NLL loss against labels.

    c1..c3: per convolution (w as (oc, 9c), b, kept copies, packing, state) for
    `refresh_packing`; b1..b3: per block (rows, res, p, a, idx, gres, grows, gwr, ga,
    chunk, gelu?); l1..l3: per linear layer (w, b, pre, out, gw, gb, gpre, gelu?), l3's
    gpre the gradient of the logits (pre). Returns (summed NLL, correct predictions).
    """
    refresh_packing(c1, True)
    refresh_packing(c2, True)
    refresh_packing(c3, True)
    _block_forward(sgemm, x, c1[4], b1[0], b1[1], b1[2], b1[3], b1[4], b1[9], b1[10])
    _block_forward(sgemm, b1[3], c2[4], b2[0], b2[1], b2[2], b2[3], b2[4], b2[9], b2[10])
    _block_forward(sgemm, b2[3], c3[4], b3[0], b3[1], b3[2], b3[3], b3[4], b3[9], b3[10])
    _nhwc_to_rows(b3[3], feats)
    _linear_forward(sgemm, feats, l1[0], l1[1], l1[2], l1[3], l1[7])
    _linear_forward(sgemm, l1[3], l2[0], l2[1], l2[2], l2[3], l2[7])
    _linear_forward(sgemm, l2[3], l3[0], l3[1], l3[2], l3[3], l3[7])
    return _nll_grad(l3[2], labels, scale, l3[6])


@njit(**FAST)
def network_train_backward(sgemm, x, c1, c2, c3, b1, b2, b3, l1, l2, l3, feats, gfeats, gx, cg):
    """The backward half, after `network_train_forward` with the same arguments: every
    parameter's gradient, the head's into l*[4:6], the convolutions' into cg = (gw1, gb1,
    gw2, gb2, gw3, gb3) in PyTorch layouts. gx: x's gradient (no samples: not computed)."""
    _linear_backward(sgemm, l2[3], l3[0], l3[6], l3[4], l3[5], l2[6])
    if l2[7]:
        _gelu_grad_rows(l2[2], l2[6])
    _linear_backward(sgemm, l1[3], l2[0], l2[6], l2[4], l2[5], l1[6])
    if l1[7]:
        _gelu_grad_rows(l1[2], l1[6])
    _linear_backward(sgemm, feats, l1[0], l1[6], l1[4], l1[5], gfeats)
    _rows_to_nhwc(gfeats, b3[8])
    _block_backward(
        sgemm, b2[3], c3[4], b3[0], b3[5], b3[6], b3[7], b3[2], b3[4], b3[8], b2[8], b3[9], b3[10]
    )
    _block_backward(
        sgemm, b1[3], c2[4], b2[0], b2[5], b2[6], b2[7], b2[2], b2[4], b2[8], b1[8], b2[9], b2[10]
    )
    _block_backward(
        sgemm, x, c1[4], b1[0], b1[5], b1[6], b1[7], b1[2], b1[4], b1[8], gx, b1[9], b1[10]
    )
    _unpack_conv_grads(b1[7], cg[0], cg[1])
    _unpack_conv_grads(b2[7], cg[2], cg[3])
    _unpack_conv_grads(b3[7], cg[4], cg[5])


# ---- the combine and the update, a range of the flat parameter vector at a time -----------


@njit(**JIT)
def sum_slots(parts, out, lo, hi):
    """out[lo:hi] = the sum over slots of parts[:, lo:hi] (in slot order)."""
    first = parts[0]
    for i in range(lo, hi):
        out[i] = first[i]
    for k in range(1, parts.shape[0]):
        row = parts[k]
        for i in range(lo, hi):
            out[i] += row[i]


@njit(**JIT)
def sgd_range(p, g, v, new, lo, hi, lr, momentum, mode):
    """One SGD step on [lo, hi): mode 0 new = p - lr g; 1 p -= lr g; 2 v = momentum v + g,
    p -= lr v. Plain IEEE arithmetic (no fused multiply-add): numpy's results, bit for bit."""
    if mode == 0:
        for i in range(lo, hi):
            new[i] = p[i] - lr * g[i]
    elif mode == 1:
        for i in range(lo, hi):
            p[i] = p[i] - lr * g[i]
    else:
        for i in range(lo, hi):
            vi = momentum * v[i] + g[i]
            v[i] = vi
            p[i] = p[i] - lr * vi


# ---- a training step's end, shared out between its tasks --------------------------------
#
# counters (int64, in the run's shared arrays, zero at each step): [slices done, chunks
# claimed]. A task adds its slice to the first; once all slices are in, every task still
# there claims chunks of the flat parameter vector one at a time from the second, sums the
# slots' partial gradients of each and later updates the same chunks. Whoever arrives
# last never waits, so the step ends even when the tasks run one after the other.


@njit(**JIT)
def arrive(counters):
    """This task's slice is done: returns how many slices are, this one included."""
    return atomics.atomic_add(counters, 0, 1) + 1


@njit(**JIT)
def claim_chunks(counters, parts, grad, bounds, mine, reduce):
    """Claim chunks [bounds[c], bounds[c + 1]) until none is left; with `reduce`, sum the
    slots' partial gradients parts (slots, size) of each into grad. The chunks claimed go
    to mine; returns how many."""
    k = 0
    last = bounds.shape[0] - 1
    while True:
        c = atomics.atomic_add(counters, 1, 1)
        if c >= last:
            return k
        if reduce:
            sum_slots(parts, grad, bounds[c], bounds[c + 1])
        mine[k] = c
        k += 1


@njit(**JIT)
def update_chunks(p, g, v, new, bounds, mine, k, lr, momentum, mode):
    """`sgd_range` on each of the k chunks in mine."""
    for i in range(k):
        c = mine[i]
        sgd_range(p, g, v, new, bounds[c], bounds[c + 1], lr, momentum, mode)
