"""numba kernels for the passes numpy cannot make in one fast sweep.

Imported lazily (by `vectorized`, when a kernel first runs): starting partui never
imports numba. Every kernel releases the GIL, so two threads run them at once,
and is compiled once per argument type and cached on disk.

Convolutions build *patch rows*: one row per output pixel, columns ordered
(kh, kw, c), then a column of ones that carries the bias through the GEMM. From
an NHWC image each row is three contiguous runs of 3*c floats, so building it is
a copy, not a gather.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from partui.kernels.runtime import jitcache

# On disk in the user's cache folder (jitcache); PARTUI_NUMBA_CACHE=0 compiles afresh
# (to inspect the generated code).
_CACHE = jitcache.cache_enabled()
# error_model="numpy": a float division needs no zero check, so loops vectorize.
JIT: dict[str, Any] = dict(nogil=True, cache=_CACHE, error_model="numpy")
# Reassociation and FMA contraction only: no finite-math assumption, a NaN still shows.
FAST: dict[str, Any] = dict(JIT, fastmath={"contract", "reassoc", "arcp"})

_K0 = np.float32(0.7978845608028654)  # sqrt(2/pi)
_K1 = np.float32(0.044715 * 0.7978845608028654)
_HALF = np.float32(0.5)
_ONE = np.float32(1.0)
_ZERO = np.float32(0.0)
# tanh(u) = u * P(u^2) / Q(u^2) on |u| <= 7.9053 (beyond it tanh is +-1 in float32):
# the rational fit Eigen uses for float32, within a few ulp. It vectorizes; a
# libm tanhf call does not.
_CLAMP = np.float32(7.90531110763549805)
_A1, _A3, _A5, _A7 = (
    np.float32(4.89352455891786e-03),
    np.float32(6.37261928875436e-04),
    np.float32(1.48572235717979e-05),
    np.float32(5.12229709037114e-08),
)
_A9, _A11, _A13 = (
    np.float32(-8.60467152213735e-11),
    np.float32(2.00018790482477e-13),
    np.float32(-2.76076847742355e-16),
)
_B0, _B2, _B4, _B6 = (
    np.float32(4.89352518554385e-03),
    np.float32(2.26843463243900e-03),
    np.float32(1.18534705686654e-04),
    np.float32(1.19825839466702e-06),
)


@njit(inline="always", **FAST)
def tanh_scalar(u):
    u = min(max(u, -_CLAMP), _CLAMP)
    u2 = u * u
    p = u2 * _A13 + _A11
    p = p * u2 + _A9
    p = p * u2 + _A7
    p = p * u2 + _A5
    p = p * u2 + _A3
    p = p * u2 + _A1
    q = u2 * _B6 + _B4
    q = q * u2 + _B2
    q = q * u2 + _B0
    return u * p / q


@njit(inline="always", **FAST)
def gelu_scalar(v):
    return _HALF * v * (_ONE + tanh_scalar(v * (_K0 + _K1 * v * v)))


@njit(inline="always", **JIT)
def max_scalar(a, b):
    """max that keeps a NaN from either side, as np.maximum does (Python's max would drop one)."""
    return a if (a >= b or a != a) else b


@njit(**FAST)
def act_spans(x, xs0, xs1, out, os0, os1, a, b, length, bias, apply_gelu):
    """out = [GELU](x [+ bias]) over a x b contiguous spans of `length` floats.

    x and out are flat arrays; span (i, j) starts at i*s0 + j*s1. `bias` (or None)
    is indexed by the position within the span (a linear layer's feature). Spans
    let any region whose last axis is contiguous vectorize like a flat array.
    """
    for i in range(a):
        for j in range(b):
            xo = i * xs0 + j * xs1
            oo = i * os0 + j * os1
            _act_run(x[xo : xo + length], out[oo : oo + length], bias, apply_gelu)


@njit(**FAST)
def act_spans_inplace(x, s0, s1, a, b, length, bias, apply_gelu):
    """act_spans with out = x. One array, so the compiler needs no overlap check:
    with two, identical pointers fail it and the loop runs scalar."""
    for i in range(a):
        for j in range(b):
            o = i * s0 + j * s1
            _act_run_inplace(x[o : o + length], bias, apply_gelu)


# Indices below come straight from range() over slices: numba then knows they
# are not negative and emits no wrap-around select, which would block vectorizing.
@njit(inline="always", **FAST)
def _act_run(src, dst, bias, apply_gelu):
    if bias is None:
        for k in range(src.shape[0]):
            dst[k] = gelu_scalar(src[k])
    elif apply_gelu:
        for k in range(src.shape[0]):
            dst[k] = gelu_scalar(src[k] + bias[k])
    else:
        for k in range(src.shape[0]):
            dst[k] = src[k] + bias[k]


@njit(inline="always", **FAST)
def _act_run_inplace(x, bias, apply_gelu):
    if bias is None:
        for k in range(x.shape[0]):
            x[k] = gelu_scalar(x[k])
    elif apply_gelu:
        for k in range(x.shape[0]):
            x[k] = gelu_scalar(x[k] + bias[k])
    else:
        for k in range(x.shape[0]):
            x[k] = x[k] + bias[k]


@njit(**JIT)
def pool_nchw(x, out):
    """2x2 max-pool (floor) of x (n, c, h, w) into out (n, c, oh, ow), any strides.

    Two sweeps per output row: the max of the two input rows (contiguous, so it
    vectorizes), then of neighbouring pairs.
    """
    n, c, oh, ow = out.shape
    pair = np.empty(2 * ow, dtype=np.float32)
    for s in range(n):
        for ch in range(c):
            for i in range(oh):
                r0 = x[s, ch, 2 * i]
                r1 = x[s, ch, 2 * i + 1]
                o = out[s, ch, i]
                for j in range(2 * ow):
                    pair[j] = max_scalar(r0[j], r1[j])
                for j in range(ow):
                    o[j] = max_scalar(pair[2 * j], pair[2 * j + 1])


@njit(**FAST)
def pool_nhwc(y, out, apply_gelu):
    """2x2 max-pool (floor) of NHWC y (n, h, w, c) into NHWC out (n, h//2, w//2, c); then GELU if
    asked."""
    n, oh, ow, c = out.shape
    for s in range(n):
        for i in range(oh):
            for j in range(ow):
                a = y[s, 2 * i, 2 * j]
                b = y[s, 2 * i, 2 * j + 1]
                d = y[s, 2 * i + 1, 2 * j]
                e = y[s, 2 * i + 1, 2 * j + 1]
                o = out[s, i, j]
                for k in range(c):
                    o[k] = max_scalar(max_scalar(a[k], b[k]), max_scalar(d[k], e[k]))
                if apply_gelu:  # a second sweep: GELU vectorizes along the channels
                    for k in range(c):
                        o[k] = gelu_scalar(o[k])


@njit(**JIT)
def _rows_of_image(img, rows):
    """Patch rows of one NHWC image img (h, w, c) into rows (oh*ow, 9c+1), ones in the last
    column."""
    h, w, c = img.shape
    oh, ow = h - 2, w - 2
    flat = img.reshape(h, w * c)
    run = 3 * c
    for i in range(oh):
        for j in range(ow):
            r = rows[i * ow + j]
            for kh in range(3):
                src = flat[i + kh, j * c : j * c + run]
                dst = r[kh * run : kh * run + run]
                for q in range(run):
                    dst[q] = src[q]
            r[9 * c] = _ONE


@njit(**JIT)
def im2row_nhwc(y, rows):
    """Patch rows of NHWC y (m, h, w, c) into rows (m*oh*ow, 9c+1)."""
    m, h, w, c = y.shape
    p = (h - 2) * (w - 2)
    for s in range(m):
        _rows_of_image(y[s], rows[s * p : (s + 1) * p])


@njit(**JIT)
def im2row_nchw(x, img, rows):
    """Patch rows of NCHW x (m, c, h, w; any strides) into rows (m*oh*ow, 9c+1).

    Each sample is first made NHWC in `img` (h, w, c): small enough to stay in L1.
    """
    m, c, h, w = x.shape
    p = (h - 2) * (w - 2)
    for s in range(m):
        for i in range(h):
            for j in range(w):
                d = img[i, j]
                for ch in range(c):  # strided loads, contiguous stores: the faster way round
                    d[ch] = x[s, ch, i, j]
        _rows_of_image(img, rows[s * p : (s + 1) * p])


# ---- BLAS called from inside the kernels ---------------------------------------------
#
# A task that calls numpy between its numba steps hands the interpreter lock
# back and forth a few times per chunk; with two workers each hand-off can wait
# for the other thread, and on a VM a woken thread takes a while to run. Calling
# numpy's own BLAS (the same library, so the same thread settings) from numba
# lets a whole task run without the lock.

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
# (symbol, integer width): numpy >= 2 wheels ship OpenBLAS built with 64-bit
# integers and prefixed names; other builds export plain cblas_sgemm.
_SGEMM_SYMBOLS = (
    ("scipy_cblas_sgemm64_", 64),
    ("cblas_sgemm64_", 64),
    ("scipy_cblas_sgemm", 32),
    ("cblas_sgemm", 32),
)


def _loaded_libraries() -> list[str]:
    """Shared libraries mapped into this process that may hold numpy's BLAS, most likely first."""
    try:
        with open("/proc/self/maps") as fh:
            paths = {line.split()[-1] for line in fh if ".so" in line and "/" in line}
    except OSError:
        return []
    blas = [p for p in paths if any(k in p.lower() for k in ("openblas", "blas", "mkl"))]
    return sorted(blas, key=lambda p: ("openblas" not in p.lower(), p))


def load_sgemm():
    """numpy's cblas_sgemm as a ctypes function numba can call without the GIL, or None.

    Checked on a small product against numpy before it is trusted.
    """
    import ctypes

    np.ones((2, 2), np.float32) @ np.ones((2, 2), np.float32)  # numpy's BLAS is loaded
    for path in _loaded_libraries():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name, bits in _SGEMM_SYMBOLS:
            fn = getattr(lib, name, None)
            if fn is None:
                continue
            i = ctypes.c_int64 if bits == 64 else ctypes.c_int32
            f, p = ctypes.c_float, ctypes.c_void_p
            fn.restype = None
            fn.argtypes = [
                ctypes.c_int,
                ctypes.c_int,
                ctypes.c_int,
                i,
                i,
                i,
                f,
                p,
                i,
                p,
                i,
                f,
                p,
                i,
            ]
            if _sgemm_works(fn):
                return fn
    return None


def _sgemm_works(fn) -> bool:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((5, 7), dtype=np.float32)
    b = rng.standard_normal((6, 7), dtype=np.float32)
    c = np.full((5, 6), np.nan, np.float32)
    gemm_nt(fn, a, b, c)
    return bool(np.allclose(c, a.astype(np.float64) @ b.T.astype(np.float64), atol=1e-4))


@njit(inline="always", **JIT)
def _gemm(sgemm, a, b, c, trans_b):
    """c = a @ b (or a @ b.T), row-major, every matrix with a unit inner stride."""
    m, k = a.shape
    n = c.shape[1]
    sgemm(
        _ROW_MAJOR,
        _NO_TRANS,
        _TRANS if trans_b else _NO_TRANS,
        m,
        n,
        k,
        _ONE,
        a.ctypes.data,
        a.strides[0] // 4,
        b.ctypes.data,
        b.strides[0] // 4,
        _ZERO,
        c.ctypes.data,
        c.strides[0] // 4,
    )


@njit(**JIT)
def gemm_nt(sgemm, a, b, c):
    """c = a @ b.T through `sgemm` (the loader's self-test)."""
    _gemm(sgemm, a, b, c, True)


@njit(**JIT)
def _rows_to_planes(res, out):
    """GEMM rows res (m*p, oc), one per output pixel, into out (m, oc, p): 8x8 blocks."""
    m, oc, p = out.shape
    for s in range(m):
        base = s * p
        r = 0
        while r + 8 <= p:
            for k0 in range(0, oc - 7, 8):
                for kk in range(8):
                    dst = out[s, k0 + kk]
                    for rr in range(8):
                        dst[r + rr] = res[base + r + rr, k0 + kk]
            for k in range(oc - oc % 8, oc):
                for rr in range(8):
                    out[s, k, r + rr] = res[base + r + rr, k]
            r += 8
        for r2 in range(r, p):
            for k in range(oc):
                out[s, k, r2] = res[base + r2, k]


@njit(**JIT)
def refresh_packing(weights, rows_layout):
    """Pack the weights for the GEMM unless they still equal the copy kept at the last packing.

    weights = (w, b, kept_w, kept_b, packed, state): w (oc, 9c) in (c, kh, kw) order (a
    view of the layer's (oc, c, 3, 3) weights), b (oc,); packed is (9c+1, oc) in patch-row
    order (kh, kw, c) for `rows_layout`, else (oc, 9c+1); its last row / column holds b.
    Checking costs a fifth of packing, and needs no GIL here.
    """
    w, b, kept_w, kept_b, packed, state = weights
    oc, k = w.shape
    if state[0] == 1:
        differ = 0
        for o in range(oc):
            differ += b[o] != kept_b[o]
            src, old = w[o], kept_w[o]
            for j in range(k):
                differ += src[j] != old[j]
        if differ == 0:
            return
    c = k // 9
    for o in range(oc):
        kept_b[o] = b[o]
        for j in range(k):
            kept_w[o, j] = w[o, j]
    if rows_layout:
        for t in range(9):
            for ch in range(c):
                dst = packed[t * c + ch]
                for o in range(oc):
                    dst[o] = w[o, ch * 9 + t]
        for o in range(oc):
            packed[k, o] = b[o]
    else:
        for o in range(oc):
            for j in range(k):
                packed[o, j] = w[o, j]
            packed[o, k] = b[o]
    state[0] = 1


@njit(**JIT)
def conv_rows_nchw(sgemm, x, weights, out, rows, res, img, m):
    """3x3 convolution of NCHW x (n, c, h, w) into out (n, oc, oh*ow), chunks of m samples:
    patch rows, one GEMM with the packed weights (bias in its last row), rows back to planes."""
    refresh_packing(weights, True)
    conv_rows_packed(sgemm, x, weights[4], out, rows, res, img, m)


@njit(**JIT)
def conv_rows_packed(sgemm, x, wr, out, rows, res, img, m):
    """conv_rows_nchw with the weights packed already (wr (9c+1, oc)): what a task of a native
    parallel region runs once the region has packed them for all its tasks."""
    n, c, h, w = x.shape
    p = (h - 2) * (w - 2)
    for s0 in range(0, n, m):
        s1 = min(n, s0 + m)
        r = rows[: (s1 - s0) * p]
        q = res[: (s1 - s0) * p]
        im2row_nchw(x[s0:s1], img, r)
        _gemm(sgemm, r, wr, q, False)
        _rows_to_planes(q, out[s0:s1])


@njit(**JIT)
def conv_cols_nchw(sgemm, x, weights, out, cols):
    """3x3 convolution with one GEMM per sample, wc (oc, 9c+1) @ patch columns (9c+1, oh*ow),
    written straight into out (n, oc, oh*ow): for thin inputs (K = 9c small, output wide)."""
    refresh_packing(weights, False)
    conv_cols_packed(sgemm, x, weights[4], out, cols)


BLOCK = 16  # floats per block copy of patch columns: one AVX-512 vector, two AVX2 ones


def _block_pointer(context, builder, aryty, ary, idx):
    """(codegen) A pointer to the BLOCK float32 from ary[idx] (idx: intp values, one per
    axis), for one vector load or store; no bounds check."""
    arr = context.make_array(aryty)(context, builder, ary)
    ptr = cgutils.get_item_pointer(context, builder, aryty, arr, idx, wraparound=False)
    return builder.bitcast(ptr, ir.VectorType(ir.FloatType(), BLOCK).as_pointer())


def _block_fma(builder):
    """(codegen) LLVM's fused multiply-add on BLOCK float32 vectors."""
    vec = ir.VectorType(ir.FloatType(), BLOCK)
    return cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(vec, [vec, vec, vec]), f"llvm.fma.v{BLOCK}f32"
    )


@intrinsic
def _copy_block(typingctx, src, o, dst, d):
    """dst[d : d + BLOCK] = src[o : o + BLOCK] for 1-D float32 arrays with unit stride, as one
    unaligned vector load and store, and with no bounds check: the caller keeps both runs
    inside memory it owns. Written as a loop, LLVM turned these short copies into scatters."""
    ok = all(
        isinstance(a, types.Array) and a.ndim == 1 and a.dtype == types.float32 for a in (src, dst)
    )
    if not (ok and isinstance(o, types.Integer) and isinstance(d, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        sty, oty, dty, dity = sig.args
        o = context.cast(builder, args[1], oty, types.intp)
        d = context.cast(builder, args[3], dity, types.intp)
        value = builder.load(_block_pointer(context, builder, sty, args[0], [o]), align=4)
        builder.store(value, _block_pointer(context, builder, dty, args[2], [d]), align=4)
        return context.get_dummy_value()

    return types.void(src, o, dst, d), codegen


@intrinsic
def _taps_block(typingctx, dst, d, base, bd, wr, row, o0, xs):
    """dst[d : d + BLOCK] = base[bd : bd + BLOCK] + sum over t < 9 of xs[t] * wr[row + t * c,
    o0 : o0 + BLOCK], c = wr.shape[0] // 9 (the 3x3 taps of one input channel, packed rows):
    vectors held in registers, one fused multiply-add per tap. dst and base are 1-D, wr 2-D
    C-contiguous, all float32 with unit inner stride; no bounds check. Written as a loop,
    LLVM kept these short sums scalar (it cannot rule out dst overlapping the weights)."""
    f32 = types.float32
    ok = all(isinstance(a, types.Array) and a.dtype == f32 for a in (dst, base, wr))
    ok = ok and dst.ndim == 1 and base.ndim == 1 and wr.ndim == 2 and wr.layout == "C"
    ok = ok and isinstance(xs, types.UniTuple) and xs.count == 9 and xs.dtype == f32
    if not (ok and all(isinstance(i, types.Integer) for i in (d, bd, row, o0))):
        return None

    def codegen(context, builder, sig, args):
        dty, dity, bty, bity, wty, rty, oty, _ = sig.args
        vec = ir.VectorType(ir.FloatType(), BLOCK)
        intp = context.get_value_type(types.intp)

        def pointer(aryty, ary, idx):
            return _block_pointer(context, builder, aryty, ary, idx)

        di = context.cast(builder, args[1], dity, types.intp)
        bi = context.cast(builder, args[3], bity, types.intp)
        r = context.cast(builder, args[5], rty, types.intp)
        o = context.cast(builder, args[6], oty, types.intp)
        warr = context.make_array(wty)(context, builder, args[4])
        wshape = cgutils.unpack_tuple(builder, warr.shape)
        c = builder.udiv(wshape[0], ir.Constant(intp, 9))
        zeros = ir.Constant(ir.VectorType(ir.IntType(32), BLOCK), [0] * BLOCK)
        fma = _block_fma(builder)
        base = builder.load(pointer(bty, args[2], [bi]), align=4)
        # three chains of three taps, summed at the end: one chain of nine would wait on
        # each multiply-add's latency in turn
        chains = [base, None, None]
        for t in range(9):
            x = builder.extract_value(args[7], t)
            xv = builder.insert_element(
                ir.Constant(vec, ir.Undefined), x, ir.Constant(ir.IntType(32), 0)
            )
            xv = builder.shuffle_vector(xv, ir.Constant(vec, ir.Undefined), zeros)
            wrow = builder.add(r, builder.mul(c, ir.Constant(intp, t)))
            wv = builder.load(pointer(wty, args[4], [wrow, o]), align=4)
            k = t % 3
            chains[k] = (
                builder.fmul(xv, wv)
                if chains[k] is None
                else builder.call(fma, [xv, wv, chains[k]])
            )
        acc = builder.fadd(builder.fadd(chains[0], chains[1]), chains[2])
        builder.store(acc, pointer(dty, args[0], [di]), align=4)
        return context.get_dummy_value()

    return types.void(dst, d, base, bd, wr, row, o0, xs), codegen


@intrinsic
def _window_block(typingctx, dst, d, wr, o0, patch):
    """One input channel (c = 1): dst[d : d + BLOCK] = the max, over the four 3x3 windows of
    the 4x4 `patch` (row-major), of the bias wr[9, o0 : o0 + BLOCK] plus the window's taps
    against wr[:9, o0 : o0 + BLOCK] (packed rows). The nine weight vectors are loaded once
    for the four windows, whose sums stay in registers (four independent chains); the max
    keeps a NaN as max_scalar does. dst 1-D, wr 2-D C-contiguous, float32; no bounds check."""
    f32 = types.float32
    ok = all(isinstance(a, types.Array) and a.dtype == f32 for a in (dst, wr))
    ok = ok and dst.ndim == 1 and wr.ndim == 2 and wr.layout == "C"
    ok = ok and isinstance(patch, types.UniTuple) and patch.count == 16 and patch.dtype == f32
    if not (ok and isinstance(d, types.Integer) and isinstance(o0, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        dty, dity, wty, oty, _ = sig.args
        vec = ir.VectorType(ir.FloatType(), BLOCK)
        i32 = ir.IntType(32)
        intp = context.get_value_type(types.intp)

        def pointer(aryty, ary, idx):
            return _block_pointer(context, builder, aryty, ary, idx)

        o = context.cast(builder, args[3], oty, types.intp)
        di = context.cast(builder, args[1], dity, types.intp)
        fma = _block_fma(builder)
        zeros = ir.Constant(ir.VectorType(i32, BLOCK), [0] * BLOCK)
        undef = ir.Constant(vec, ir.Undefined)
        rows = [pointer(wty, args[2], [ir.Constant(intp, t), o]) for t in range(10)]
        taps = [builder.load(ptr, align=4) for ptr in rows]
        xs = []
        for k in range(16):
            x = builder.extract_value(args[4], k)
            x = builder.insert_element(undef, x, ir.Constant(i32, 0))
            xs.append(builder.shuffle_vector(x, undef, zeros))
        best = None
        for a, b in ((0, 0), (0, 1), (1, 0), (1, 1)):
            acc = taps[9]
            for t in range(9):
                kh, kw = divmod(t, 3)
                acc = builder.call(fma, [xs[(a + kh) * 4 + b + kw], taps[t], acc])
            if best is None:
                best = acc
            else:  # best if (best >= acc or best is NaN) else acc
                ge = builder.fcmp_ordered(">=", best, acc)
                nan = builder.fcmp_unordered("uno", best, best)
                best = builder.select(builder.or_(ge, nan), best, acc)
        builder.store(best, pointer(dty, args[0], [di]), align=4)
        return context.get_dummy_value()

    return types.void(dst, d, wr, o0, patch), codegen


def cols_width(h: int, w: int) -> int:
    """Floats per row of a patch-column buffer for an (h, w) input: the output pixels, plus room
    for the block copies of the last output row to run past them (conv_cols_packed)."""
    oh, ow = h - 2, w - 2
    return max(oh * ow, (oh - 1) * ow + -(-ow // BLOCK) * BLOCK)


@njit(**JIT)
def conv_cols_packed(sgemm, x, wc, out, cols):
    """conv_cols_nchw with the weights packed already (wc (oc, 9c+1)); cols (9c+1, >= oh*ow),
    cols_width(h, w) wide for the block copies."""
    n, c, h, w = x.shape
    oh, ow = h - 2, w - 2
    p = oh * ow
    k = 9 * c
    blocks = (ow + BLOCK - 1) // BLOCK
    # Each output row's run of ow floats is copied as whole blocks of BLOCK floats: the
    # floats past the run land where the next row's run (or the buffer's padding) goes, so
    # the rows are filled in ascending order. The loads past an input row's run read the
    # next row of the same plane, so they need unit-stride rows laid end to end and, for
    # the plane's last row, the per-float copy.
    fast = (
        cols.shape[1] >= (oh - 1) * ow + blocks * BLOCK
        and cols.strides[1] == 4
        and x.strides[3] == 4
        and x.strides[2] == 4 * w
        and 2 + blocks * BLOCK <= 2 * w
    )
    ones = cols[k]
    for q in range(p):
        ones[q] = _ONE
    for s in range(n):
        for ch in range(c):
            for kh in range(3):
                # the rows of kw = 0, 1, 2 together: each input row is loaded once, not
                # once per kw
                r0 = cols[(ch * 3 + kh) * 3]
                r1 = cols[(ch * 3 + kh) * 3 + 1]
                r2 = cols[(ch * 3 + kh) * 3 + 2]
                for i in range(oh):
                    src = x[s, ch, i + kh]
                    o = i * ow
                    if fast and i + kh < h - 1:
                        for b in range(0, blocks * BLOCK, BLOCK):
                            _copy_block(src, b, r0, o + b)
                            _copy_block(src, b + 1, r1, o + b)
                            _copy_block(src, b + 2, r2, o + b)
                    else:
                        for j in range(ow):
                            r0[o + j] = src[j]
                            r1[o + j] = src[j + 1]
                            r2[o + j] = src[j + 2]
        _gemm(sgemm, wc, cols[:, :p], out[s], False)


@njit(**FAST)
def conv_pool_nhwc(sgemm, y, weights, rows, res, out, m, apply_gelu):
    """NHWC y (n, h, w, c) -> NHWC out (n, (h-2)//2, (w-2)//2, oc): 3x3 convolution (bias in
    wr), 2x2 max-pool, then GELU if asked; m samples at a time, so the unpooled output of a
    chunk stays in cache."""
    refresh_packing(weights, True)
    conv_pool_packed(sgemm, y, weights[4], rows, res, out, m, apply_gelu)


@njit(**FAST)
def conv_pool_packed(sgemm, y, wr, rows, res, out, m, apply_gelu):
    """conv_pool_nhwc with the weights packed already (wr (9c+1, oc))."""
    n, h, w, c = y.shape
    oh, ow = h - 2, w - 2
    p = oh * ow
    oc = wr.shape[1]
    for s0 in range(0, n, m):
        s1 = min(n, s0 + m)
        r = rows[: (s1 - s0) * p]
        q = res[: (s1 - s0) * p]
        im2row_nhwc(y[s0:s1], r)
        _gemm(sgemm, r, wr, q, False)
        pool_nhwc(q.reshape(s1 - s0, oh, ow, oc), out[s0:s1], apply_gelu)


@njit(**FAST)
def conv_pool_direct(y, wr, acc, out, apply_gelu):
    """conv_pool_packed without patch rows or GEMM, for thin inputs (few weights per filter,
    where a GEMM is mostly overhead): each pooled pixel from the four convolution outputs
    under its window, a few vector multiply-adds with the sums in registers (_window_block
    for one input channel, else _taps_block per channel and window); then, a pooled row at a
    time, GELU in a long loop that vectorizes. wr (9c+1, oc): the packed weights, bias last,
    oc a multiple of BLOCK; acc: >= 5 * (w // 2) * oc floats. Only the rows and columns the
    pool keeps are computed."""
    n, h, w, c = y.shape
    ph, pw = out.shape[1], out.shape[2]
    oc = wr.shape[1]
    run = pw * oc
    sums = acc.reshape(-1)[: 5 * run].reshape(5, run)
    pooled = sums[4]
    for s in range(n):
        for i in range(ph):
            if c == 1:
                _pooled_row_one_channel(y, wr, pooled, s, i, pw, oc)
            else:
                _pooled_row(y, wr, sums, pooled, s, i, pw, c, oc)
            if apply_gelu:
                for k in range(run):
                    pooled[k] = gelu_scalar(pooled[k])
            if out.strides[3] == 4:
                for j in range(pw):
                    d = out[s, i, j]
                    for o0 in range(0, oc, BLOCK):
                        _copy_block(pooled, j * oc + o0, d, o0)
            else:
                for j in range(pw):
                    d = out[s, i, j]
                    for o in range(oc):
                        d[o] = pooled[j * oc + o]


@njit(inline="always", **FAST)
def _pooled_row_one_channel(y, wr, pooled, s, i, pw, oc):
    """Pooled row i of sample s for a one-channel input, into pooled (pw * oc)."""
    r = 2 * i
    for j in range(pw):
        col = 2 * j
        patch = (
            y[s, r, col, 0],
            y[s, r, col + 1, 0],
            y[s, r, col + 2, 0],
            y[s, r, col + 3, 0],
            y[s, r + 1, col, 0],
            y[s, r + 1, col + 1, 0],
            y[s, r + 1, col + 2, 0],
            y[s, r + 1, col + 3, 0],
            y[s, r + 2, col, 0],
            y[s, r + 2, col + 1, 0],
            y[s, r + 2, col + 2, 0],
            y[s, r + 2, col + 3, 0],
            y[s, r + 3, col, 0],
            y[s, r + 3, col + 1, 0],
            y[s, r + 3, col + 2, 0],
            y[s, r + 3, col + 3, 0],
        )
        for o0 in range(0, oc, BLOCK):
            _window_block(pooled, j * oc + o0, wr, o0, patch)


@njit(inline="always", **FAST)
def _pooled_row(y, wr, sums, pooled, s, i, pw, c, oc):
    """Pooled row i of sample s for c input channels: the four windows' sums channel by
    channel in sums[:4], then their max into pooled (pw * oc)."""
    bias = wr[9 * c]
    for j in range(pw):
        for ch in range(c):
            for q in range(4):
                r, col = 2 * i + q // 2, 2 * j + q % 2
                taps = (
                    y[s, r, col, ch],
                    y[s, r, col + 1, ch],
                    y[s, r, col + 2, ch],
                    y[s, r + 1, col, ch],
                    y[s, r + 1, col + 1, ch],
                    y[s, r + 1, col + 2, ch],
                    y[s, r + 2, col, ch],
                    y[s, r + 2, col + 1, ch],
                    y[s, r + 2, col + 2, ch],
                )
                dst = sums[q]
                for o0 in range(0, oc, BLOCK):
                    if ch == 0:
                        _taps_block(dst, j * oc + o0, bias, o0, wr, ch, o0, taps)
                    else:
                        _taps_block(dst, j * oc + o0, dst, j * oc + o0, wr, ch, o0, taps)
    s0, s1, s2, s3 = sums[0], sums[1], sums[2], sums[3]
    for k in range(pw * oc):
        pooled[k] = max_scalar(max_scalar(s0[k], s1[k]), max_scalar(s2[k], s3[k]))


@njit(inline="always", **FAST)
def conv_pool_block(sgemm, y, wr, rows, res, out, m, apply_gelu, direct):
    """One conv / pool [/ GELU] block of the fused network: conv_pool_direct (res its acc)
    or patch rows and a GEMM (conv_pool_packed)."""
    if direct:
        conv_pool_direct(y, wr, res, out, apply_gelu)
    else:
        conv_pool_packed(sgemm, y, wr, rows, res, out, m, apply_gelu)


@njit(**FAST)
def linear_act(sgemm, x, w, bias, apply_gelu, out):
    """out = [GELU](x @ w.T [+ bias]) for x (n, in), w (out, in), out (n, out): unit inner
    strides."""
    _gemm(sgemm, x, w, out, True)
    if bias is None and not apply_gelu:
        return
    for i in range(out.shape[0]):
        row = out[i]
        for k in range(row.shape[0]):
            v = row[k]
            if bias is not None:
                v += bias[k]
            row[k] = gelu_scalar(v) if apply_gelu else v


@njit(**JIT)
def logsoftmax_rows(x, out):
    """out = x - max - log(sum(exp(x - max))) row by row (out may be x)."""
    for i in range(x.shape[0]):
        row, o = x[i], out[i]
        top = row[0]
        for k in range(row.shape[0]):
            top = max_scalar(top, row[k])
        total = 0.0
        for k in range(row.shape[0]):
            total += np.exp(np.float64(row[k] - top))
        shift = top + np.float32(np.log(total))
        for k in range(row.shape[0]):
            o[k] = row[k] - shift


@njit(**FAST)
def network_nhwc(sgemm, y, blocks, features, head, out):
    """The forward pass of a group of samples in one call, without the GIL.

    y (n, h, w, c) NHWC input; `blocks`: per convolution (weights, rows, res, pooled, m,
    gelu next, direct) as conv_pool_block takes them, each block's pooled output the next one's
    input; its last output flattened in NCHW order into features (n, c*h*w); `head`: per
    linear layer (w, b, res, gelu), each res the next one's input; log-softmax into out.
    """
    for blk in blocks:
        refresh_packing(blk[0], True)
    network_packed(sgemm, y, blocks, features, head, out)


@njit(**FAST)
def network_packed(sgemm, y, blocks, features, head, out):
    """network_nhwc with every block's weights packed already."""
    for blk in blocks:
        weights, rows, res, pooled, m, gelu_next, direct = blk
        conv_pool_block(sgemm, y, weights[4], rows, res, pooled, m, gelu_next, direct)
        y = pooled
    flatten_nchw(y, features)
    v = features
    for lin in head:
        w, b, res, gelu = lin
        linear_act(sgemm, v, w, b, gelu, res)
        v = res
    logsoftmax_rows(v, out)


@njit(**JIT)
def flatten_nchw(y, features):
    """NHWC y (n, h, w, c) into features (n, c*h*w) in NCHW order, as the head's weights
    expect."""
    n, oh, ow, c = y.shape
    for s in range(n):
        f = features[s]
        for i in range(oh):
            for j in range(ow):
                src = y[s, i, j]
                for ch in range(c):
                    f[(ch * oh + i) * ow + j] = src[ch]
