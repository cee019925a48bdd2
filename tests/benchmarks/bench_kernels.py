"""What each kernel optimisation bought: before/after medians measured in the same run.

Every variant runs on one thread (BLAS at 1 thread) at batch 64, in interleaved
rounds so a busy moment on this shared machine hits all variants alike. The
"core" variants are the vectorized kernels as the compute core shipped them,
read from git history (commit CORE), so the baseline is the real code. Prints
figures; asserts nothing.

    python tests/benchmarks/bench_kernels.py [--rounds 5] [--repeats 10] [--only conv2,network]

`--only roof` runs the steps toward the GEMM roof alone: each kernel against the one it
replaced, both in this file's run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np

from partui.kernels.forward import compute, native, vectorized
from partui.kernels.model.layers import LAYERS, NETWORK, make_input, make_params
from partui.kernels.runtime.scratch import Scratch
from partui.profiles.system import blas

CORE = "9f2d6d8"  # the compute core's commit: its kernels/vectorized.py is the baseline
REPO = Path(__file__).resolve().parents[2]
CORE_MODULES = {
    "layers": "partui.kernels.model.layers",
    "scratch": "partui.kernels.runtime.scratch",
    "caches": "partui.kernels.runtime.caches",
    "native": "partui.kernels.forward.native",
    "strategies": "partui.kernels.plan.strategies",
}


def core_kernels() -> types.ModuleType | None:
    try:
        src = subprocess.run(
            ["git", "-C", str(REPO), "show", f"{CORE}:kernels/vectorized.py"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    # Its relative imports name the flat modules of its day: point them at their rooms.
    import importlib
    import sys

    for flat, room in CORE_MODULES.items():
        sys.modules.setdefault(f"partui.kernels.{flat}", importlib.import_module(room))
    mod = types.ModuleType("core_vectorized")
    mod.__package__ = "partui.kernels"
    try:
        exec(compile(src, f"{CORE}:kernels/vectorized.py", "exec"), mod.__dict__)
    except ImportError as exc:  # a name it takes has left its module since
        print(f"(the core's kernels cannot be loaded: {exc})")
        return None
    return mod


# ---- conv2 variants: one step at a time ----------------------------------------------


def conv_wide(x, w, b, out, scratch):
    """No patch copy: the input made CNHW once, then 9 GEMMs of shifted views, summed.

    out_wide[o, q] = sum over (kh, kw) of W[:, :, kh, kw] @ X[:, q + kh*w + kw]; the
    positions past a row's end are computed and dropped (h*w / (oh*ow) more work).
    """
    n, c, h, wd = x.shape
    oc = w.shape[0]
    oh, ow = h - 2, wd - 2
    q = n * h * wd - (2 * wd + 2)
    xt = scratch.get("wide.x", (c, n * h * wd))
    xt.reshape(c, n, h, wd)[...] = x.transpose(1, 0, 2, 3)
    acc = scratch.get("wide.acc", (oc, n * h * wd))
    tmp = scratch.get("wide.tmp", (oc, q))
    wt = np.ascontiguousarray(w.transpose(2, 3, 0, 1))  # (3, 3, oc, c)
    np.matmul(wt[0, 0], xt[:, :q], out=acc[:, :q])
    for kh in range(3):
        for kw in range(3):
            if kh or kw:
                s = kh * wd + kw
                np.matmul(wt[kh, kw], xt[:, s : s + q], out=tmp)
                acc[:, :q] += tmp
    full = acc.reshape(oc, n, h, wd)[:, :, :oh, :ow]
    np.add(full.transpose(1, 0, 2, 3), b[None, :, None, None], out=out)


def conv_rows(x, w, b, out, scratch, fused_bias: bool):
    """Patch rows (numba) per chunk + GEMM, with the bias in the GEMM or in a pass of its own."""
    n, c, h, wd = x.shape
    oc = w.shape[0]
    oh, ow = h - 2, wd - 2
    p, k1 = oh * ow, 9 * c + 1
    wr = vectorized.pack_rows_weights(w, b if fused_bias else None, scratch.get("rows.w", (k1, oc)))
    m = vectorized.chunk_size(n, p * k1 * 4)
    rows = scratch.get("rows.rows", (m * p, k1))
    res = scratch.get("rows.res", (m * p, oc))
    img = scratch.get("rows.img", (h, wd, c))
    for s0 in range(0, n, m):
        s1 = min(n, s0 + m)
        r, q = rows[: (s1 - s0) * p], res[: (s1 - s0) * p]
        native.im2row_nchw(x[s0:s1], img, r)
        np.matmul(r, wr, out=q)
        out[s0:s1] = q.reshape(s1 - s0, oh, ow, oc).transpose(0, 3, 1, 2)
    if not fused_bias:
        out += b[:, None, None]


# ---- steps toward the GEMM roof: the kernel each step replaced -------------------------


def _previous_kernels():
    """The native kernels as they were before each step, compiled here (numba imported now)."""
    from numba import njit

    @njit(nogil=True, error_model="numpy")
    def conv_cols_per_float(sgemm, x, wc, out, cols):
        """Patch columns copied float by float (before the block copies), one GEMM a sample."""
        n, c, h, w = x.shape
        oh, ow = h - 2, w - 2
        k = 9 * c
        ones = cols[k]
        for q in range(ones.shape[0]):
            ones[q] = 1.0
        for s in range(n):
            for ch in range(c):
                for kh in range(3):
                    r0 = cols[(ch * 3 + kh) * 3]
                    r1 = cols[(ch * 3 + kh) * 3 + 1]
                    r2 = cols[(ch * 3 + kh) * 3 + 2]
                    for i in range(oh):
                        src = x[s, ch, i + kh]
                        o = i * ow
                        for j in range(ow):
                            r0[o + j] = src[j]
                            r1[o + j] = src[j + 1]
                            r2[o + j] = src[j + 2]
            native._gemm(sgemm, wc, cols, out[s], False)

    return types.SimpleNamespace(conv_cols_per_float=conv_cols_per_float)


def roof_steps(rounds: int, repeats: int, clock=time.perf_counter_ns) -> None:
    """Each step toward the GEMM roof against the kernel it replaced, interleaved."""
    sgemm = vectorized._sgemm()
    if sgemm is None:
        print("\n(numpy's BLAS cannot be called from numba here: no native steps to compare)")
        return
    old = _previous_kernels()
    layer, x, p, out = layer_case("conv2")
    n, c, h, wd = x.shape
    oc, pix = p["weight"].shape[0], (h - 2) * (wd - 2)
    s = Scratch()
    weights = vectorized._native_weights(s, "bench.w", p["weight"], p["bias"], rows=False)
    native.refresh_packing(weights, False)
    cols = np.empty((9 * c + 1, pix), np.float32)
    planes = out.reshape(n, oc, pix)

    def per_sample_now(s=Scratch()):
        old_pixels, vectorized.PER_SAMPLE_PIXELS = vectorized.PER_SAMPLE_PIXELS, 0
        try:
            vectorized.conv(x, p["weight"], p["bias"], out, s)
        finally:
            vectorized.PER_SAMPLE_PIXELS = old_pixels

    v = {
        "a GEMM per sample, patch columns float by float": lambda: old.conv_cols_per_float(
            sgemm, x, weights[4], planes, cols
        ),
        "a GEMM per sample, patch columns in vector blocks": per_sample_now,
        "now: vectorized.conv with this CPU's choices": lambda s=Scratch(): vectorized.conv(
            x, p["weight"], p["bias"], out, s
        ),
    }
    show_steps(
        "conv2: steps toward the GEMM roof",
        layer.flops(64),
        measure(v, rounds, repeats, clock),
        repeats,
    )

    layer, x, p, out = layer_case("network")
    conv1 = LAYERS["conv1"]
    weights = vectorized._native_weights(s, "bench.conv1", p["conv1.weight"], p["conv1.bias"], True)
    native.refresh_packing(weights, True)
    y = x.reshape(64, 28, 28, 1)  # one channel: NCHW and NHWC are the same bytes
    oc, oh, ow = conv1.out_shape
    pooled = np.empty((64, oh // 2, ow // 2, oc), np.float32)
    rows = np.empty((oh * ow, 10), np.float32)
    res = np.empty((oh * ow, oc), np.float32)
    v = {
        "patch rows, GEMM, pool + GELU (chunks of 1 sample)": lambda: native.conv_pool_packed(
            sgemm, y, weights[4], rows, res, pooled, 1, True
        ),
        "direct: taps as vector multiply-adds, pool + GELU": lambda: native.conv_pool_direct(
            y, weights[4], res, pooled, True
        ),
    }
    show_steps(
        "the network's conv1 block (conv1, pool1, gelu1)",
        conv1.flops(64),
        measure(v, rounds, repeats, clock),
        repeats,
    )

    def network_with(knobs: dict):
        """The fused forward bound with these network knobs (the rest: this CPU's choices)."""
        from partui.kernels.runtime import tuning

        tuning.use({**tuning.choices(), "network": {**tuning.knob_set("network"), **knobs}})
        try:
            return vectorized.bind_network(x, p, out, Scratch())
        finally:
            tuning.use(None)

    v = {
        "conv1 by patch rows and a GEMM (chunks of 1 sample)": network_with(
            {"conv1.direct": False, "conv1.chunk_samples": 1}
        ),
        "conv1 direct, pool and GELU fused": network_with({"conv1.direct": True}),
        "  + one native call for the batch (head GEMMs of 64 rows)": network_with(
            {"conv1.direct": True, "call_samples": 64}
        ),
        "now: vectorized.network with this CPU's choices": network_with({}),
    }
    show_steps(
        "network: steps toward the GEMM roof",
        layer.flops(64),
        measure(v, rounds, repeats, clock),
        repeats,
    )


# ---- measuring ---------------------------------------------------------------------------


def measure(variants: dict, rounds: int, repeats: int, clock=time.perf_counter_ns):
    """{variant: times in ms}, `rounds` interleaved rounds of `repeats` each, timed by `clock`
    (time.thread_time_ns: this thread's CPU time, which leaves out the time another program
    held the core: for one-thread kernels on a busy machine)."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for fn in variants.values():  # warm-up: numba compiles or loads its cache
        fn()
    for _ in range(rounds):
        for name, fn in variants.items():
            fn()
            for _ in range(repeats):
                t0 = clock()
                fn()
                times[name].append((clock() - t0) / 1e6)
    return times


def show(title: str, flops: int, times: dict[str, list[float]]) -> None:
    print(f"\n{title}")
    first = None
    for name, t in times.items():
        med = float(np.median(t))
        first = first or med
        print(
            f"  {name:58s} {med:8.3f} ms  ({min(t):.3f}-{max(t):.3f})  "
            f"{flops / (med * 1e6):6.1f} GFLOP/s  {first / med:5.2f}x"
        )


def show_steps(title: str, flops: int, times: dict[str, list[float]], repeats: int) -> None:
    """Each variant's median of its rounds' medians and fastest repeat, and its speedup over
    the first line as the median of the per-round ratios [their range]: a busy moment
    slows one round of every variant, so the ratios hold where the times do not."""
    print(f"\n{title}")
    rounds = {k: np.median(np.reshape(t, (-1, repeats)), axis=1) for k, t in times.items()}
    first = next(iter(rounds.values()))
    for name, per in rounds.items():
        ratio = first / per
        med = float(np.median(per))
        print(
            f"  {name:58s} {med:8.3f} ms  (fastest {min(times[name]):.3f})  "
            f"{flops / (med * 1e6):6.1f} GFLOP/s  {np.median(ratio):5.2f}x "
            f"[{ratio.min():.2f}-{ratio.max():.2f}]"
        )


def layer_case(name: str):
    layer = LAYERS[name]
    x = make_input(layer, 64)
    params = make_params(layer)
    out = np.empty(layer.out_array_shape(64), np.float32)
    return layer, x, params, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument(
        "--cpu-time",
        action="store_true",
        help="time the roof steps by this thread's CPU time (one thread: a busy machine's "
        "other programs then cost them no time, only cache)",
    )
    ap.add_argument("--only", default="conv1,conv2,conv3,pool1,gelu1,linear2,network,threads,roof")
    args = ap.parse_args()
    only = set(args.only.split(","))
    core = core_kernels()
    if core is None:
        print(f"(git history with commit {CORE} not found: no compute-core baseline)")
    blas.set_threads(1)
    R, N = args.rounds, args.repeats
    print(
        f"batch 64, 1 thread, {R} interleaved rounds x {N} repeats; median (min-max); "
        f"speedup vs the first line"
    )

    for name in ("conv1", "conv2", "conv3"):
        if name not in only:
            continue
        layer, x, p, out = layer_case(name)
        w, b = p["weight"], p["bias"]
        v = {}
        if core:
            v["core: im2col of the task, batched GEMM, bias pass"] = lambda s=Scratch(): core.conv(
                x, w, b, out, s
            )
        if name == "conv2":
            v["9 shifted GEMMs on a CNHW wide layout (no patch copy)"] = lambda s=Scratch(): (
                conv_wide(x, w, b, out, s)
            )
            v["patch rows per chunk (numba) + GEMM, bias pass"] = lambda s=Scratch(): conv_rows(
                x, w, b, out, s, False
            )
            v["  + bias fused in the GEMM (ones column)"] = lambda s=Scratch(): conv_rows(
                x, w, b, out, s, True
            )
            for kb in (128, 512, 2048):

                def chunked(s=Scratch(), kb=kb):
                    old = vectorized.CHUNK_BYTES, vectorized.PER_SAMPLE_PIXELS
                    vectorized.CHUNK_BYTES, vectorized.PER_SAMPLE_PIXELS = kb * 1024, 1 << 30
                    try:
                        vectorized.conv(x, w, b, out, s)
                    finally:
                        vectorized.CHUNK_BYTES, vectorized.PER_SAMPLE_PIXELS = old

                v[f"native patch rows, chunks of {kb} KB, rows to planes"] = chunked

            def patch_rows(s=Scratch()):
                old, vectorized.PER_SAMPLE_PIXELS = vectorized.PER_SAMPLE_PIXELS, 1 << 30
                try:
                    vectorized.conv(x, w, b, out, s)
                finally:
                    vectorized.PER_SAMPLE_PIXELS = old

            v["native patch rows (L2-share chunks), rows to planes"] = patch_rows
        v["now: vectorized.conv (conv2: a GEMM per sample into its planes)"] = lambda s=Scratch(): (
            vectorized.conv(x, w, b, out, s)
        )
        show(name, layer.flops(64), measure(v, R, N))

    for name, op in (("pool1", "pool"), ("gelu1", "gelu")):
        if name not in only:
            continue
        layer, x, p, out = layer_case(name)
        v = {}
        if core:
            v[f"core: numpy {'4 strided views' if op == 'pool' else '8 passes, np.tanh'}"] = (
                lambda s=Scratch(), f=getattr(core, op): f(x, out, s)
            )
        v[f"now: one numba pass{' (rational tanh)' if op == 'gelu' else ''}"] = (
            lambda s=Scratch(), f=getattr(vectorized, op): f(x, out, s)
        )
        v["now, in place" if op == "gelu" else "now, again"] = (
            lambda s=Scratch(), f=getattr(vectorized, op), y=x.copy(): f(
                y, y if op == "gelu" else out, s
            )
        )
        show(name, layer.flops(64), measure(v, R, N))

    if "linear2" in only:
        layer, x, p, out = layer_case("linear2")
        v = {}
        if core:
            v["core: GEMM, bias pass, numpy GELU"] = lambda s=Scratch(): core.linear(
                x, p["weight"], p["bias"], True, out, s
            )
        v["now: GEMM, bias + GELU in one numba pass"] = lambda s=Scratch(): vectorized.linear(
            x, p["weight"], p["bias"], True, out, s
        )
        show("linear2", layer.flops(64), measure(v, R, N))

    if "network" in only:
        layer, x, p, out = layer_case("network")
        v = {}
        if core:
            v["core: layer by layer, core kernels"] = lambda s=Scratch(): np.copyto(
                out, compute.stage_forward(core, NETWORK, x, p, s)
            )
        v["layer by layer, today's kernels"] = lambda s=Scratch(): np.copyto(
            out, compute.stage_forward(vectorized, NETWORK, x, p, s)
        )
        fn = vectorized._sgemm()
        for label, gemm in (
            ("numpy GEMMs between numba steps, 8-sample chunks", None),
            ("GEMMs called inside numba, one call per block", fn),
        ):

            def fused(s=Scratch(), gemm=gemm):
                vectorized._sgemm_state[:] = [gemm]
                try:
                    vectorized.network(x, p, out, s)
                finally:
                    vectorized._sgemm_state[:] = [fn]

            if gemm is not None or fn is not None:
                v[f"fused forward: {label}"] = fused
        show("network", layer.flops(64), measure(v, R, N))

    if "threads" in only:
        two_threads(R, N)
    if "roof" in only:
        roof_steps(R, N, time.thread_time_ns if args.cpu_time else time.perf_counter_ns)
    return 0


def two_threads(rounds: int, repeats: int) -> None:
    """Batch halves on two threads, BLAS called from numba (no GIL) or numpy between steps."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(2)
    fn = vectorized._sgemm()
    if fn is None:
        print("\n(numpy's BLAS cannot be called from numba here: no two-thread comparison)")
        return
    for name in ("conv2", "conv3", "network"):
        layer, x, p, out = layer_case(name)
        scratches = [Scratch(), Scratch()]

        def task(i, n0, n1):
            if name == "network":
                vectorized.network(x[n0:n1], p, out[n0:n1], scratches[i])
            else:
                vectorized.conv(x[n0:n1], p["weight"], p["bias"], out[n0:n1], scratches[i])

        def with_gemm(path, threads):
            def run():
                vectorized._sgemm_state[:] = [fn if path == "native" else None]
                if threads == 1:
                    task(0, 0, 64)
                else:
                    for f in [pool.submit(task, i, 32 * i, 32 * i + 32) for i in range(2)]:
                        f.result()

            return run

        v = {
            f"{t} thread{'s' * (t > 1)}, {path} GEMM calls": with_gemm(path, t)
            for path in ("native", "numpy")
            for t in (1, 2)
        }
        show(f"{name}: batch halves on 2 threads", layer.flops(64), measure(v, rounds, repeats))
    vectorized._sgemm_state[:] = [fn]
    pool.shutdown()


if __name__ == "__main__":
    sys.exit(main())
