"""SIMD: the same y = a*x + y loop compiled scalar and vectorized, float32 and float64."""

from __future__ import annotations

from functools import partial

import numpy as np

from partui.kernels.lab import asm
from partui.kernels.lab import simd as kernels
from partui.profiles.lab.experiments.common import (
    CPU_TIME_NOTE,
    KiB,
    MiB,
    cache_markers,
    calibrated,
    share_note,
    size_text,
    ys,
)
from partui.profiles.lab.measure import Lab, compare, split_calls
from partui.profiles.system import machine as machine_info

SIMD_SERIES = {f"{dt} {kind}": (dt, kind) for dt in kernels.DTYPES for kind in ("scalar", "vector")}


def plan(quick: bool) -> dict:
    sizes = (
        [4 * KiB, 16 * KiB, 256 * KiB, 4 * MiB]
        if quick
        else [4 * KiB, 8 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB, 16 * MiB]
    )
    return {"sizes": sizes, "repeats": 5 if quick else 7, "target_s": 0.008 if quick else 0.02}


def need(p: dict) -> int:
    return max(p["sizes"])  # x and y together


def check_code(kern) -> dict:
    """The widest vector arithmetic (bits; 0: scalar only) of each compiled loop."""
    import numba

    out = {}
    for dt in kernels.DTYPES:
        arr = numba.types.Array(numba.from_dtype(np.dtype(dt)), 1, "C")
        for kind, fn in (("scalar", kern.axpy_scalar), ("vector", kern.axpy)):
            out[f"{dt} {kind}"] = asm.packed_width(asm.first_function(asm.asm_of(fn, arr)))
    return out


def headline_size(sizes: list[int], l1: int | None) -> int:
    """The largest working set that fits in half the L1 data cache (else the smallest)."""
    inside = [s for s in sizes if l1 and s <= l1 // 2]
    return max(inside) if inside else min(sizes)


def run(lab: Lab, p: dict) -> dict:
    kern = kernels.native()
    widths = check_code(kern)
    fns = {"scalar": kern.axpy_scalar, "vector": kern.axpy}
    results_equal = True
    for size in p["sizes"]:
        arrays = {}
        for dt in kernels.DTYPES:
            n = size // 2 // np.dtype(dt).itemsize
            x = np.random.default_rng(1).random(n).astype(dt)
            arrays[dt] = (x, np.zeros(n, dt), np.zeros(n, dt), np.dtype(dt).type(0.5))
            xs, y1, y2, a = arrays[dt]
            kern.axpy(xs, y1, a, 3)  # untimed: the same result either way, bit for bit
            kern.axpy_scalar(xs, y2, a, 3)
            results_equal &= bool(np.array_equal(y1, y2))

        def jobs(series: str, passes: int) -> list:
            dt, kind = SIMD_SERIES[series]
            x, y, _, a = arrays[dt]
            per_call = max(1, 1_000_000 // x.size)
            return [[partial(fns[kind], x, y, a, c) for c in split_calls(passes, per_call)]]

        passes = {
            s: calibrated(lab, partial(jobs, s), max(1, 100_000 // (size // 8)), p["target_s"])
            for s in SIMD_SERIES
        }
        samples = lab.interleaved({s: jobs(s, passes[s]) for s in SIMD_SERIES}, p["repeats"])
        for s, (dt, _) in SIMD_SERIES.items():
            elements = arrays[dt][0].size * passes[s]
            lab.add(
                s,
                size,
                "working set (bytes)",
                "elements per ns",
                *ys(samples[s], lambda smp: elements / smp.cpu_ns),
            )
    return summarize(lab, p, widths, results_equal)


def summarize(lab: Lab, p: dict, widths: dict, results_equal: bool) -> dict:
    l1 = lab.machine.get("l1")
    head = headline_size(p["sizes"], l1)
    get = {(q.series, int(q.x)): q for q in lab.points}
    by_size = {}
    for size in p["sizes"]:
        row = {}
        for dt in kernels.DTYPES:
            v, s = get[(f"{dt} vector", size)], get[(f"{dt} scalar", size)]
            row[dt] = {
                "vector_over_scalar": v.median / s.median,
                "verdict": compare(v, s, higher_is_better=True).to_dict(),
                "vector_elements_per_ns": v.median,
                "scalar_elements_per_ns": s.median,
            }
        by_size[str(size)] = row
    ext = machine_info.vector_extensions()
    f32_vec, f64_vec = get[("float32 vector", head)], get[("float64 vector", head)]
    return {
        "headline_bytes": head,
        "l1_bytes": l1,
        "vector_over_scalar": by_size[str(head)]["float32"]["vector_over_scalar"],
        "vector_over_scalar_float64": by_size[str(head)]["float64"]["vector_over_scalar"],
        "float32_over_float64_vector": compare(f32_vec, f64_vec, higher_is_better=True).to_dict(),
        "by_size": by_size,
        "cpu_vector_extensions": ext["extensions"],
        "cpu_widest": ext["widest"],
        "cpu_register_bits": ext["register_bits"],
        "avx512_subsets": ext["avx512_subsets"],
        "compiled_vector_bits": widths,
        "scalar_is_scalar": all(widths[f"{dt} scalar"] == 0 for dt in kernels.DTYPES),
        "results_equal": results_equal,
    }


def explain(summary: dict, lab: Lab) -> str:
    head, bits = summary["headline_bytes"], summary["cpu_register_bits"]
    used = summary["compiled_vector_bits"]
    vec_bits = max(used[f"{dt} vector"] for dt in kernels.DTYPES)
    exts = ", ".join(summary["cpu_vector_extensions"]) or "none found"
    lines = [
        f"y[i] = a*x[i] + y[i] over two arrays, compiled twice from the same code: once as the "
        f"compiler likes it (vector instructions) and once with its vectorizer switched off "
        f"(one number per instruction). This CPU's flags list: {exts}; the widest registers are "
        f"{bits} bits ({bits // 32} float32 or {bits // 64} float64 numbers).",
        f"In the machine code, the vector loops use {vec_bits}-bit registers "
        f"({vec_bits // 32 if vec_bits else 0} float32 lanes); "
        + (
            "the scalar loops have no vector arithmetic (checked)."
            if summary["scalar_is_scalar"]
            else "BUT the scalar loops contain vector "
            "arithmetic: the comparison below is not scalar against vector."
        ),
    ]
    if summary["cpu_widest"] == "AVX-512" and 0 < vec_bits < 512:
        lines.append(
            "The CPU has AVX-512 but the compiler chose narrower vectors: LLVM prefers "
            "256-bit vectors on such CPUs (512-bit instructions can lower the clock)."
        )
    row = summary["by_size"][str(head)]
    for dt in kernels.DTYPES:
        r = row[dt]
        lanes = vec_bits // (32 if dt == "float32" else 64) if vec_bits else 1
        lines.append(
            f"{size_text(head)} working set (in L1), {dt}: vector "
            f"{r['vector_elements_per_ns']:.2f} against scalar "
            f"{r['scalar_elements_per_ns']:.2f} elements per ns: "
            f"{r['verdict']['text']} ({lanes} lanes would allow up to {lanes}x)."
        )
    f = summary["float32_over_float64_vector"]
    lines.append(
        f"Vector float32 against vector float64: {f['text']}: a register holds twice as "
        f"many float32 numbers, and the data is half the size."
    )
    big = max(int(s) for s in summary["by_size"])
    far = summary["by_size"][str(big)]["float32"]
    if big > head:
        l2 = lab.machine.get("l2")
        where = "beyond the L2 cache" if l2 and big > l2 else "beyond L1"
        lines.append(
            f"At {size_text(big)} ({where}) the gap is {far['vector_over_scalar']:.1f}x "
            f"for float32: the vector loop now waits for the data from the outer "
            f"caches or memory, and wider arithmetic cannot fetch it faster."
        )
    if not summary["results_equal"]:
        lines.append("RESULTS DIFFER between the scalar and the vector loop.")
    lines.append(CPU_TIME_NOTE)
    return "\n".join(lines) + share_note(lab.points, "the thread", cpu_timed=True)


def markers(lab: Lab, summary: dict) -> list:
    return cache_markers(lab.machine)
