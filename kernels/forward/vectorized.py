"""Vectorized kernels: numpy and BLAS, with numba for the passes numpy makes slowly.

Each function computes exactly the region it is handed (`out` a view into the run's output,
`x` the matching input), so strategies cut work without copies back. Work goes a chunk of
samples at a time, so building patch matrices is split between workers like the GEMMs and a
chunk's buffers stay in L2. The GEMM dominates: it runs on L2-sized chunks of patch rows
with the bias as a column of ones; patch rows are copied in long runs by numba; convolutions
with wide output planes use one GEMM per sample written straight into NCHW planes; a task's
native arguments are made once (`bind`); max-pool and GELU are one numba pass each. Why each
choice pays, with the figures: docs/PERFORMANCE.md.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import as_strided

from partui.kernels.model.layers import NETWORK, prod
from partui.kernels.plan.strategies import split_range
from partui.kernels.runtime import caches, tuning
from partui.kernels.runtime.scratch import Cancelled, Scratch, reshaped_view

SQRT_2_OVER_PI = np.float32(np.sqrt(2.0 / np.pi))
# Patch rows per GEMM: a chunk's rows (plus its GEMM result and the packed weights) should
# stay in the worker's own share of the L2 cache (sysfs, read at run time: with two workers
# on two cores that share an L2, each gets half). CHUNK_BYTES set: that instead (benchmarks).
CHUNK_BYTES: int | None = None
CHUNK_L2_PARTS = 4  # rows take this fraction of the L2 share
# ...but at least this many times the packed weights' bytes: BLAS packs them again at every
# call, so with large weights (conv3) fewer, larger chunks win.
CHUNK_WEIGHT_TIMES = 2
CHUNK_FALLBACK = 512 * 1024  # where sysfs does not say
THIN_K = 64  # convolutions with fewer than this many weights per filter: one GEMM per sample
# ...and, in the native kernels, those with at least this many output pixels per plane:
# W (oc, 9c+1) @ patch columns (9c+1, pixels) writes NCHW planes directly, no pass to
# turn GEMM rows into planes; with few pixels (conv3) the small GEMMs cost more than it saves.
PER_SAMPLE_PIXELS = 64
NET_CHUNK = 8  # samples per pass of the fused network forward
DIRECT_BLOCK = 16  # native.BLOCK: output channels per vector of the direct convolution
MEMO_ENTRIES = 16  # packed weights kept per worker
CALL_FLOPS = 200_000_000  # work per native call: bounds how long a cancel may wait

Call = Callable[..., None]  # call(cancel=None): a kernel bound to its regions (see bind)

_sgemm_state: list = []  # [numba-callable sgemm or None], filled on first use


def _sgemm():
    """numpy's BLAS sgemm, callable inside numba kernels (so a task runs without the GIL),
    or None: then the kernels call np.matmul between numba steps. PARTUI_NATIVE_BLAS=0 forces
    that."""
    if not _sgemm_state:
        import os

        on = os.environ.get("PARTUI_NATIVE_BLAS", "1") != "0"
        _sgemm_state.append(_native().load_sgemm() if on else None)
    return _sgemm_state[0]


def _groups(n: int, flops_per_sample: float) -> list[tuple[int, int]]:
    """Samples in balanced groups of at most ~CALL_FLOPS of work: one native call each."""
    return split_range(n, int(-(-n * flops_per_sample // CALL_FLOPS)))


def _blas_matrix(a) -> bool:
    """A 2-D float32 matrix BLAS can take as it is: unit inner stride, rows far enough apart."""
    return (
        a.ndim == 2
        and a.dtype == np.float32
        and a.strides[1] == 4
        and a.strides[0] % 4 == 0
        and a.strides[0] // 4 >= max(1, a.shape[1])
    )


def _native():
    from partui.kernels.forward import native  # numba: imported on first use, never at start-up

    return native


def check_cancel(cancel) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled()


def _calls(fn, arg_lists: list[tuple]) -> Call:
    """call(cancel): fn(*args) for each args in turn, checking for a cancel before each. All the
    interpreter does per call is this loop: the arguments were made when the task was bound."""
    if len(arg_lists) == 1:
        (args,) = arg_lists

        def one(cancel=None) -> None:
            check_cancel(cancel)
            fn(*args)

        return one

    def each(cancel=None) -> None:
        for args in arg_lists:
            check_cancel(cancel)
            fn(*args)

    return each


def _samples_groups(n: int, per_call: int, flops_per_sample: float) -> list[tuple[int, int]]:
    """Samples per native call: `per_call` as tuned on this CPU (0: not tuned), else groups
    of ~CALL_FLOPS."""
    if per_call > 0:
        return split_range(n, -(-n // per_call))
    return _groups(n, flops_per_sample)


def conv_choices(c: int, h: int, w: int, oc: int, n: int) -> tuple[bool, int, list]:
    """How a native convolution of n samples (c, h, w) -> oc runs on this CPU: one GEMM per
    sample straight into its planes (else chunks of patch rows), samples per chunk of rows,
    and the groups of samples of each native call. Tuned values (kernels.runtime.tuning)
    where this CPU has them, else the rules: per sample for thin inputs or wide planes,
    chunks sized by the L2 (chunk_size), ~CALL_FLOPS per call."""
    p, k1 = (h - 2) * (w - 2), 9 * c + 1
    shape = tuning.conv_shape(c, h, w, oc)
    per_sample = bool(tuning.knob(shape, "per_sample", 9 * c < THIN_K or p >= PER_SAMPLE_PIXELS))
    groups = _samples_groups(n, int(tuning.knob(shape, "call_samples", 0)), 2 * oc * (k1 - 1) * p)
    most = max(g1 - g0 for g0, g1 in groups)
    m = int(tuning.knob(shape, "chunk_samples", 0))
    m = min(m, most) if m > 0 else chunk_size(most, p * k1 * 4, k1 * oc * 4)
    return per_sample, m, groups


def chunk_bytes() -> int:
    """Bytes of patch rows per GEMM on this machine (see CHUNK_BYTES)."""
    if CHUNK_BYTES:
        return CHUNK_BYTES
    share = caches.own_share(2)
    return share // CHUNK_L2_PARTS if share else CHUNK_FALLBACK


def chunk_size(n: int, bytes_per_sample: int, weight_bytes: int = 0) -> int:
    """Samples per chunk: at most max(chunk_bytes(), CHUNK_WEIGHT_TIMES x `weight_bytes`) of
    buffer, and chunks of even size (no small last one)."""
    budget = max(chunk_bytes(), CHUNK_WEIGHT_TIMES * weight_bytes)
    most = max(1, min(n, budget // max(1, bytes_per_sample)))
    chunks = -(-n // most)
    return -(-n // chunks)


# ---- convolution --------------------------------------------------------------


def pack_rows_weights(w, b, wr: np.ndarray) -> np.ndarray:
    """w (oc, c, 3, 3) [+ b] as wr (9c+1, oc): rows in patch-row order (kh, kw, c), bias last."""
    oc, c = w.shape[:2]
    k = 9 * c
    wr[:k].reshape(3, 3, c, oc)[...] = w.transpose(2, 3, 1, 0)
    wr[k] = 0.0 if b is None else b
    return wr


def pack_cols_weights(w, b, wc: np.ndarray) -> np.ndarray:
    """w (oc, c, 3, 3) [+ b] as wc (oc, 9c+1): columns in (c, kh, kw) order, bias last."""
    oc, c = w.shape[:2]
    k = 9 * c
    wc[:, :k].reshape(oc, c, 3, 3)[...] = w
    wc[:, k] = 0.0 if b is None else b
    return wc


def packed_weights(scratch: Scratch, name: str, w, b, rows: bool | None = None) -> np.ndarray:
    """w [+ b] packed for this convolution's GEMM, reused while the weights are unchanged.

    Packing is a transposing copy; checking that the weights still equal those
    packed last time costs much less. Entries are found by where the weights live (a
    worker may alternate between channel slices) and always checked by value.
    `rows`: the patch-row layout (9c+1, oc), the column layout (oc, 9c+1), or
    None for the one `conv` uses (columns for thin convolutions).
    """
    oc, c = w.shape[:2]
    if rows is None:
        rows = 9 * c >= THIN_K
    key = (name, rows, w.ctypes.data, w.shape, w.strides, None if b is None else b.ctypes.data)
    hit = scratch.memo.get(key)
    if hit is not None:
        src_w, src_b, packed = hit
        if np.array_equal(src_w, w) and (b is None or np.array_equal(src_b, b)):
            return packed
    if rows:
        packed = pack_rows_weights(w, b, np.empty((9 * c + 1, oc), np.float32))
    else:
        packed = pack_cols_weights(w, b, np.empty((oc, 9 * c + 1), np.float32))
    if len(scratch.memo) >= MEMO_ENTRIES:
        scratch.memo.clear()
    scratch.memo[key] = (np.array(w), None if b is None else np.array(b), packed)
    return packed


def _native_weights(scratch: Scratch, name: str, w, b, rows: bool):
    """What the native kernels need to keep w [+ b] packed: (w as (oc, 9c), b, the copies kept
    at the last packing, the packing, its state), or None if w cannot be seen as (oc, 9c).

    The kernels check the weights against the kept copy and repack only when they
    differ, inside the native call: no GIL taken for it (with two workers, every
    GIL hand-off can wait on the other thread).
    """
    oc, c = w.shape[:2]
    w2 = reshaped_view(w, (oc, 9 * c))
    if w2 is None or w2.strides[1] != 4:
        return None
    if b is None:
        b = scratch.get(f"{name}.nobias", (oc,))
        b.fill(0.0)
    key = (name, rows, w.shape, w.ctypes.data)
    slot = scratch.memo.get(key)
    if slot is None:
        if len(scratch.memo) >= MEMO_ENTRIES:
            scratch.memo.clear()
        shape = (9 * c + 1, oc) if rows else (oc, 9 * c + 1)
        slot = scratch.memo[key] = (
            np.empty((oc, 9 * c), np.float32),
            np.empty(oc, np.float32),
            np.empty(shape, np.float32),
            np.zeros(1, np.int64),
        )
    return (w2, b, *slot)


def conv(x, w, b, out, scratch: Scratch, cancel=None) -> None:
    """3x3 valid convolution of x (n, c, h, w) into out (n, oc, h-2, w-2), bias fused in the
    GEMM."""
    bind_conv(x, w, b, out, scratch)(cancel)


def bind_conv(x, w, b, out, scratch: Scratch) -> Call:
    """conv on these regions as a call(cancel) whose native arguments are made now: calling
    it costs one native call per group of samples (see bind)."""
    n, c, h, wd = x.shape
    oc, p, k1 = w.shape[0], (h - 2) * (wd - 2), 9 * c + 1
    thin = 9 * c < THIN_K
    sgemm = _sgemm()
    planes = reshaped_view(out, (n, oc, p)) if sgemm is not None else None
    weights = None
    # native: one GEMM per sample straight into its output planes (or chunks of patch rows)
    per_sample, m, groups = conv_choices(c, h, wd, oc, n)
    if planes is not None and _blas_matrix(planes[0]):
        weights = _native_weights(scratch, "conv.w", w, b, rows=not per_sample)
    if weights is None:  # numpy GEMMs between numba steps

        def numpy_gemms(cancel=None) -> None:
            packed = packed_weights(scratch, "conv.w", w, b)
            if thin:
                _conv_per_sample(x, packed, out, scratch, cancel)
            else:
                _conv_rows(x, packed, out, scratch, cancel)

        return numpy_gemms
    assert planes is not None  # weights are made only with planes
    nat = _native()
    if per_sample:
        cols = scratch.get("conv.cols1", (k1, nat.cols_width(h, wd)))
        return _calls(
            nat.conv_cols_nchw,
            [(sgemm, x[g0:g1], weights, planes[g0:g1], cols) for g0, g1 in groups],
        )
    rows = scratch.get("conv.rows", (m * p, k1))
    res = scratch.get("conv.res", (m * p, oc))
    img = scratch.get("conv.img", (h, wd, c))
    return _calls(
        nat.conv_rows_nchw,
        [(sgemm, x[g0:g1], weights, planes[g0:g1], rows, res, img, m) for g0, g1 in groups],
    )


def _patch_rows(x, nhwc: bool, rows: np.ndarray, scratch: Scratch) -> None:
    nat = _native()
    if nhwc:
        nat.im2row_nhwc(x, rows)
    else:
        _, c, h, w = x.shape
        nat.im2row_nchw(x, scratch.get("conv.img", (h, w, c)), rows)


def _conv_rows(x, wr, out, scratch: Scratch, cancel=None) -> None:
    """Chunks of patch rows times the packed weights, transposed into the NCHW output region."""
    n, c, h, wd = x.shape
    oh, ow = h - 2, wd - 2
    p, k1, oc = oh * ow, wr.shape[0], wr.shape[1]
    m = chunk_size(n, p * k1 * 4, k1 * oc * 4)
    rows = scratch.get("conv.rows", (m * p, k1))
    res = scratch.get("conv.res", (m * p, oc))
    for s0 in range(0, n, m):
        check_cancel(cancel)
        s1 = min(n, s0 + m)
        r, q = rows[: (s1 - s0) * p], res[: (s1 - s0) * p]
        _patch_rows(x[s0:s1], False, r, scratch)
        np.matmul(r, wr, out=q)
        # numpy's transposing copy: faster here than a numba loop
        out[s0:s1] = q.reshape(s1 - s0, oh, ow, oc).transpose(0, 3, 1, 2)


def _conv_per_sample(x, wc, out, scratch: Scratch, cancel=None) -> None:
    """Per-sample patch columns (k-major, ones row last) and one GEMM per sample into the output."""
    n, c, h, wd = x.shape
    oh, ow = h - 2, wd - 2
    p, k = oh * ow, 9 * c
    oc = wc.shape[0]
    m = chunk_size(n, p * (k + 1) * 4)
    cols = scratch.get("conv.cols", (m, k + 1, oh, ow))
    for s0 in range(0, n, m):
        check_cancel(cancel)
        s1 = min(n, s0 + m)
        cm = cols[: s1 - s0]
        taps = cm[:, :k].reshape(s1 - s0, c, 3, 3, oh, ow)
        for kh in range(3):
            for kw in range(3):
                taps[:, :, kh, kw] = x[s0:s1, :, kh : kh + oh, kw : kw + ow]
        cm[:, k] = 1.0
        dst = reshaped_view(out[s0:s1], (s1 - s0, oc, p))
        if dst is None:  # a region that cannot be seen flat: compute, then copy in
            tmp = scratch.get("conv.tmp", (m, oc, p))[: s1 - s0]
            np.matmul(wc, cm.reshape(s1 - s0, k + 1, p), out=tmp)
            out[s0:s1] = tmp.reshape(out[s0:s1].shape)
        else:
            np.matmul(wc, cm.reshape(s1 - s0, k + 1, p), out=dst)


# ---- elementwise: spans over a flat array -------------------------------------


def _spans(arrays, keep_last: bool = False):
    """The arrays (same shape) as (a, b, length) spans of contiguous floats over flat arrays.

    Returns ([(flat, s0, s1), ...], a, b, length) or None when some array's last
    axis is not contiguous or its axes do not fold into three. Axes fold only
    where every array allows it; `keep_last` keeps the last axis apart (a bias
    indexed by it).
    """
    shape = arrays[0].shape
    if any(a.dtype != np.float32 or a.shape != shape for a in arrays) or not all(shape):
        return None
    if all(a.flags.c_contiguous for a in arrays):  # the common case, without as_strided's cost
        if keep_last and len(shape) > 1:
            rows = arrays[0].size // shape[-1]
            return [(a.reshape(-1), shape[-1], 0) for a in arrays], rows, 1, shape[-1]
        return [(a.reshape(-1), 0, 0) for a in arrays], 1, 1, arrays[0].size
    strides = [[s // 4 for s in a.strides] for a in arrays]
    if any(s < 0 for st in strides for s in st):
        return None
    dims = [(shape[i], [st[i] for st in strides]) for i in range(len(shape)) if shape[i] != 1]
    if not dims:
        dims = [(1, [1] * len(arrays))]
    folded = [dims[-1]]
    for size, st in reversed(dims[:-1]):
        inner, ist = folded[0]
        if (not keep_last or len(folded) > 1) and all(s == i * inner for s, i in zip(st, ist)):
            folded[0] = (size * inner, ist)
        else:
            folded.insert(0, (size, st))
    if len(folded) > 3 or any(s != 1 for s in folded[-1][1]):
        return None
    while len(folded) < 3:
        folded.insert(0, (1, [0] * len(arrays)))
    (a, st0), (b, st1), (length, _) = folded
    views = []
    for j, arr in enumerate(arrays):
        span = (a - 1) * st0[j] + (b - 1) * st1[j] + length
        views.append((as_strided(arr, shape=(span,), strides=(4,)), st0[j], st1[j]))
    return views, a, b, length


def _act_call(x, out, bias, apply_gelu: bool) -> Call | None:
    """out = [GELU](x [+ bias]) as one numba pass, bound; None when the layout does not allow it."""
    sp = _spans([x, out], keep_last=bias is not None)
    if sp is None:
        return None
    ((xf, xs0, xs1), (of, os0, os1)), a, b, length = sp
    nat = _native()
    if xf.ctypes.data == of.ctypes.data and (xs0, xs1) == (os0, os1):  # in place
        return _calls(nat.act_spans_inplace, [(of, os0, os1, a, b, length, bias, apply_gelu)])
    return _calls(nat.act_spans, [(xf, xs0, xs1, of, os0, os1, a, b, length, bias, apply_gelu)])


def _act(x, out, bias, apply_gelu: bool) -> bool:
    """out = [GELU](x [+ bias]) in one numba pass; False when the layout does not allow it."""
    call = _act_call(x, out, bias, apply_gelu)
    if call is None:
        return False
    call()
    return True


def gelu(x, out, scratch: Scratch, cancel=None) -> None:
    """tanh-approximation GELU; `out` may be `x` (in place)."""
    bind_gelu(x, out, scratch)(cancel)


def bind_gelu(x, out, scratch: Scratch) -> Call:
    call = _act_call(x, out, None, True)
    if call is not None:
        return call

    def numpy_passes(cancel=None) -> None:
        _gelu_numpy(x, out, scratch)

    return numpy_passes


def _gelu_numpy(x, out, scratch: Scratch) -> None:
    """The same in numpy: one scratch buffer, no temporaries (regions numba cannot see flat)."""
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


def pool(x, out, scratch: Scratch, cancel=None) -> None:
    """2x2 max-pool (floor): one pass over the input region."""
    bind_pool(x, out, scratch)(cancel)


def bind_pool(x, out, scratch: Scratch) -> Call:
    return _calls(_native().pool_nchw, [(x, out)])


def linear(x, w, b, apply_gelu: bool, out, scratch: Scratch, cancel=None) -> None:
    """x (n, in) @ w.T (in, out), then bias and GELU in one pass, written into out (n, out)."""
    bind_linear(x, w, b, apply_gelu, out, scratch)(cancel)


def bind_linear(x, w, b, apply_gelu: bool, out, scratch: Scratch) -> Call:
    sgemm = _sgemm()
    if sgemm is not None and x.size and all(_blas_matrix(a) for a in (x, w, out)):
        return _calls(_native().linear_act, [(sgemm, x, w, b, bool(apply_gelu), out)])

    def numpy_gemm(cancel=None) -> None:
        np.matmul(x, w.T, out=out)
        if b is None and not apply_gelu:
            return
        if not _act(out, out, b, apply_gelu):
            if b is not None:
                np.add(out, b, out=out)
            if apply_gelu:
                _gelu_numpy(out, out, scratch)

    return numpy_gemm


def logsoftmax(x, out, scratch: Scratch, cancel=None) -> None:
    """Numerically stable: subtract the row max before exp."""
    np.subtract(x, x.max(axis=1, keepdims=True), out=out)
    t = scratch.get("logsoftmax.t", out.shape)
    np.exp(out, out=t)
    out -= np.log(t.sum(axis=1, keepdims=True))


# ---- the whole network --------------------------------------------------------


def _split_head(layers):
    """The per-pixel trunk (convolutions, pools, GELUs) and the per-row head (linear onwards)."""
    for i, sub in enumerate(layers):
        if sub.kind in ("linear", "logsoftmax"):
            return layers[:i], layers[i:]
    return layers, ()


TRUNK, HEAD = _split_head(NETWORK)


def _blocks(trunk):
    """The trunk as (conv, pool, GELU after it?) blocks, or None if it is not made of them."""
    blocks, i = [], 0
    while i < len(trunk):
        if i + 1 >= len(trunk) or (trunk[i].kind, trunk[i + 1].kind) != ("conv", "pool"):
            return None
        gelu_next = i + 2 < len(trunk) and trunk[i + 2].kind == "gelu"
        blocks.append((trunk[i], trunk[i + 1], gelu_next))
        i += 3 if gelu_next else 2
    return blocks


BLOCKS = _blocks(TRUNK)
# the native forward pass ends with linear layers, then log-softmax
NATIVE_HEAD = len(HEAD) > 1 and HEAD[-1].kind == "logsoftmax"
NATIVE_HEAD = NATIVE_HEAD and all(sub.kind == "linear" for sub in HEAD[:-1])
LAYERS_FLOPS_PER_SAMPLE = sum(sub.flops(1) for sub in NETWORK)


def network(x, params, out, scratch: Scratch, cancel=None) -> None:
    """The forward pass of NETWORK on x (n, 1, 28, 28) into out (n, 26)."""
    bind_network(x, params, out, scratch)(cancel)


def bind_network(x, params, out, scratch: Scratch) -> Call:
    """The forward pass as a call(cancel): one native call per group of samples where BLAS
    can be reached from numba (the conv/pool/GELU blocks, the linear layers and the
    log-softmax in one go, activations kept NHWC and in cache), else numpy between numba
    steps, a few samples at a time."""
    native = _network_calls(x, params, out, scratch)
    if native is not None:
        return native

    def numpy_gemms(cancel=None) -> None:
        _network_numpy(x, params, out, scratch, cancel)

    return numpy_gemms


def _network_calls(x, params, out, scratch: Scratch) -> Call | None:
    sgemm = _sgemm()
    n, c, h, w = x.shape
    if sgemm is None or BLOCKS is None or not NATIVE_HEAD or c != 1 or not x.flags.c_contiguous:
        return None
    linears = [(params[f"{s.name}.weight"], params[f"{s.name}.bias"], s) for s in HEAD[:-1]]
    if not all(_blas_matrix(lw) for lw, _, _ in linears):
        return None
    blocks = []
    per_call = int(tuning.knob("network", "call_samples", 0))
    groups = _samples_groups(n, per_call, LAYERS_FLOPS_PER_SAMPLE)
    most = max(g1 - g0 for g0, g1 in groups)
    for cv, pl, gelu_next in BLOCKS:
        weights = _native_weights(
            scratch,
            f"net.{cv.name}.w",
            params[f"{cv.name}.weight"],
            params[f"{cv.name}.bias"],
            True,
        )
        if weights is None:
            return None
        oc = cv.out_shape[0]
        direct = network_direct(cv)
        rows_shape, res_shape, m = block_buffers(cv, most, direct)
        rows = scratch.get(f"net.{cv.name}.rows", rows_shape)
        res = scratch.get(f"net.{cv.name}.res", res_shape)
        pooled = scratch.get(f"net.{pl.name}.out", (most, pl.out_shape[1], pl.out_shape[2], oc))
        blocks.append((weights, rows, res, pooled, m, gelu_next, direct))
    features = scratch.get("net.features", (most, prod(TRUNK[-1].out_shape)))
    outs = [scratch.get(f"net.{s.name}", (most, *s.out_shape)) for _, _, s in linears]
    y0 = x.reshape(n, h, w, 1)  # one channel: NCHW and NHWC are the same bytes
    arg_lists = []
    for g0, g1 in groups:
        g = g1 - g0
        trunk = tuple((wts, r, q, pd[:g], m, gn, dr) for wts, r, q, pd, m, gn, dr in blocks)
        head = tuple((lw, lb, o[:g], s.gelu) for (lw, lb, s), o in zip(linears, outs))
        arg_lists.append((sgemm, y0[g0:g1], trunk, features[:g], head, out[g0:g1]))
    return _calls(_native().network_nhwc, arg_lists)


def network_direct(cv) -> bool:
    """Whether convolution `cv` of the fused network runs direct (native.conv_pool_direct: no
    patch rows, no GEMM): tuned on this CPU where it was, else for thin inputs (fewer than
    THIN_K weights per filter, where a GEMM is mostly overhead) whose output channels fill
    whole vector blocks."""
    can = cv.out_shape[0] % DIRECT_BLOCK == 0
    return can and bool(tuning.knob("network", f"{cv.name}.direct", direct_rule(cv)))


def direct_rule(cv) -> bool:
    """The built-in rule of network_direct, whatever this CPU's tuning says."""
    return 9 * cv.in_shape[0] < THIN_K and cv.out_shape[0] % DIRECT_BLOCK == 0


def block_buffers(cv, most: int, direct: bool) -> tuple[tuple, tuple, int]:
    """The shapes of a fused block's patch rows and GEMM result (direct: a small accumulator,
    its rows unused), and its samples per chunk of patch rows."""
    ci = cv.in_shape[0]
    oc, oh, ow = cv.out_shape
    p, k1 = oh * ow, 9 * ci + 1
    if direct:
        return (1, k1), (5 * (ow // 2), oc), 1
    m = network_chunk(cv, most)
    return (m * p, k1), (m * p, oc), m


def network_chunk(cv, most: int) -> int:
    """Samples per chunk of patch rows for convolution `cv` inside the fused network: tuned on
    this CPU where it was, else sized by the L2 (chunk_size)."""
    ci = cv.in_shape[0]
    oc, oh, ow = cv.out_shape
    p, k1 = oh * ow, 9 * ci + 1
    m = int(tuning.knob("network", f"{cv.name}.chunk_samples", 0))
    return min(m, most) if m > 0 else chunk_size(most, p * k1 * 4, k1 * oc * 4)


def _network_numpy(x, params, out, scratch: Scratch, cancel=None) -> None:
    """The trunk a few samples at a time, so a chunk's activations stay in cache, kept NHWC
    (the layout patch rows are copied from); then the head on all the task's rows at once:
    GEMMs of a few rows each would waste most of their time in call overhead."""
    packed = {
        sub.name: packed_weights(
            scratch, f"net.{sub.name}.w", params[f"{sub.name}.weight"], params[f"{sub.name}.bias"]
        )
        for sub in TRUNK
        if sub.kind == "conv"
    }
    n = x.shape[0]
    features = scratch.get("net.features", (n, prod(TRUNK[-1].out_shape)))
    for s0 in range(0, n, NET_CHUNK):
        check_cancel(cancel)
        s1 = min(n, s0 + NET_CHUNK)
        y, nhwc = _trunk_chunk(x[s0:s1], packed, scratch)
        if nhwc and y.shape[1] * y.shape[2] > 1:
            y = y.transpose(0, 3, 1, 2)  # flatten in NCHW order, as the head's weights expect
        features[s0:s1] = y.reshape(s1 - s0, -1)
    check_cancel(cancel)
    _head(features, params, out, scratch)


def _head(features, params, out, scratch: Scratch) -> None:
    """The per-row layers (linear onwards) on all rows at once, the last one into out."""
    y, n = features, features.shape[0]
    for sub in HEAD:
        res = scratch.get(f"net.{sub.name}", (n, *sub.out_shape))
        if sub.kind == "linear":
            linear(
                y, params[f"{sub.name}.weight"], params[f"{sub.name}.bias"], sub.gelu, res, scratch
            )
        elif sub.kind == "logsoftmax":
            logsoftmax(y, res, scratch)
        else:
            raise ValueError(f"no kernel for layer kind {sub.kind!r} after the first linear layer")
        y = res
    out[...] = y


def _trunk_chunk(x, packed, scratch: Scratch):
    """The trunk on a chunk x (m, c, h, w): returns (activations, whether they are NHWC)."""
    nat = _native()
    m = x.shape[0]
    y, nhwc = x, False  # NHWC (m, h, w, c) or NCHW (m, c, h, w)
    i = 0
    while i < len(TRUNK):
        sub = TRUNK[i]
        then_gelu = i + 1 < len(TRUNK) and TRUNK[i + 1].kind == "gelu"

        def buf(shape, what="out"):  # full-chunk buffers, sliced for a last, shorter chunk
            return scratch.get(f"net.{sub.name}.{what}", (NET_CHUNK, *shape))[:m]

        if sub.kind == "conv":
            c, h, w = sub.in_shape
            oc, oh, ow = sub.out_shape
            if 9 * c < THIN_K:
                if nhwc:
                    y = np.ascontiguousarray(y.transpose(0, 3, 1, 2))
                res = buf((oc, oh, ow))
                _conv_per_sample(y, packed[sub.name], res, scratch)
                y, nhwc = res, False
            else:
                rows = buf((oh * ow, 9 * c + 1), "rows").reshape(m * oh * ow, 9 * c + 1)
                _patch_rows(y, nhwc, rows, scratch)
                res = buf((oh, ow, oc))
                np.matmul(rows, packed[sub.name], out=res.reshape(m * oh * ow, oc))
                y, nhwc = res, True
        elif sub.kind == "pool":
            c, oh, ow = sub.out_shape
            if nhwc:
                res = buf((oh, ow, c))
                nat.pool_nhwc(y, res, then_gelu)
            else:
                res = buf((c, oh, ow))
                nat.pool_nchw(y, res)
                if then_gelu:
                    gelu(res, res, scratch)
            y = res
            i += then_gelu  # the GELU is done
        elif sub.kind == "gelu":
            gelu(y, y, scratch)
        else:
            raise ValueError(
                f"no fused kernel for layer kind {sub.kind!r} before the first linear layer"
            )
        i += 1
    return y, nhwc


# kernels whose calls `bind` can prepare: compute.bound_call keeps what it returns per task
_BINDERS: dict[Callable, Callable[..., Call]] = {
    conv: bind_conv,
    pool: bind_pool,
    gelu: bind_gelu,
    linear: bind_linear,
    network: bind_network,
}


def bind(fn, *args) -> Call | None:
    """fn(*args, scratch, cancel) as a call(cancel) with its arguments made now, for this
    module's own kernels (a task then costs the interpreter only the call); None for any
    other function (a wrapper in a test, say)."""
    binder = _BINDERS.get(fn)
    return binder(*args) if binder is not None else None
