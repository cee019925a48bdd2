"""The vectorization ladder: Python loop, comprehension, numpy, native; matrix multiply as
three Python loops, numpy per row, one `@`. The source material's figures beside ours."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from partui.kernels.lab import ladder
from partui.profiles.lab.experiments.common import CPU_TIME_NOTE, calibrated, share_note, ys
from partui.profiles.lab.measure import Lab, compare
from partui.profiles.system import blas

ELEMENTWISE, MATMUL = "elementwise", "matmul"
RUNGS = {
    ELEMENTWISE: ["python loop", "list comprehension", "numpy a * b", "native loop"],
    MATMUL: ["python 3 loops", "numpy per row", "numpy a @ b"],
}
# The material's figures (its machine, not this one): adding a million numbers one by one
# vs all at once; a triple-loop matrix multiply vs numpy.
MATERIAL_MS = {
    ELEMENTWISE: {"python loop": 500.0, "numpy a * b": 1.0},
    MATMUL: {"python 3 loops": 3600.0, "numpy a @ b": 0.12},
}
FULL_ELEMENTS = 1_000_000
PY_FLOAT_BYTES = 32  # a Python float (24 B) and the list's pointer to it (8 B)


def plan(quick: bool) -> dict:
    return {
        "elements": 200_000 if quick else FULL_ELEMENTS,
        "matmul_side": 256,
        "loop_sides": [24, 40] if quick else [32, 64],
        "repeats": 3 if quick else 5,
        "target_s": 0.01 if quick else 0.03,
    }


def need(p: dict) -> int:
    n, side = p["elements"], p["matmul_side"]
    return 3 * n * (PY_FLOAT_BYTES + 8) + 3 * side * side * 8


def series_name(kind: str, p: dict) -> str:
    if kind == ELEMENTWISE:
        return f"elementwise product, {FULL_ELEMENTS // 1_000_000}M floats"
    return f"matrix multiply {p['matmul_side']}x{p['matmul_side']}"


def run(lab: Lab, p: dict) -> dict:
    with blas.limit(1):  # one thread: the measuring thread's CPU time is all the work
        return _run(lab, p)


def _run(lab: Lab, p: dict) -> dict:
    rng = np.random.default_rng(0)
    n, side, small = p["elements"], p["matmul_side"], max(p["loop_sides"])
    a, b = rng.random(n), rng.random(n)
    al, bl = a.tolist(), b.tolist()
    out = np.empty(n)
    native = ladder.native().product_native
    A, B = rng.random((side, side)), rng.random((side, side))
    C = np.empty((side, side))
    As, Bs = {}, {}
    for m in p["loop_sides"]:
        As[m], Bs[m] = A[:m, :m].tolist(), B[:m, :m].tolist()
    calls: dict[tuple[str, str], Callable[[], Any]] = {
        (ELEMENTWISE, "python loop"): partial(ladder.product_loop, al, bl),
        (ELEMENTWISE, "list comprehension"): partial(ladder.product_comprehension, al, bl),
        (ELEMENTWISE, "numpy a * b"): partial(ladder.product_numpy, a, b, out),
        (ELEMENTWISE, "native loop"): partial(native, a, b, out),
        (MATMUL, "numpy per row"): partial(ladder.matmul_rows, A, B, C),
        (MATMUL, "numpy a @ b"): partial(ladder.matmul_at, A, B, C),
    }
    loop_calls = {m: partial(ladder.matmul_loops, As[m], Bs[m]) for m in p["loop_sides"]}
    # untimed: every rung once (compiles the native loop), each checked against numpy
    lab.check()
    expected = a * b
    results_equal = all(
        np.array_equal(np.asarray(calls[(ELEMENTWISE, r)]()), expected) for r in RUNGS[ELEMENTWISE]
    )
    exact = A @ B
    max_error = max(
        float(np.abs(calls[(MATMUL, r)]() - exact).max()) for r in ("numpy per row", "numpy a @ b")
    )
    for m in p["loop_sides"]:
        lab.check()
        max_error = max(
            max_error, float(np.abs(np.array(loop_calls[m]()) - A[:m, :m] @ B[:m, :m]).max())
        )

    def jobs(fn, count: int) -> list:
        return [[fn] * count]

    counts = {
        key: calibrated(lab, partial(jobs, fn), 1, p["target_s"]) for key, fn in calls.items()
    }
    counts.update(
        {
            ("loops", m): calibrated(lab, partial(jobs, fn), 1, p["target_s"])
            for m, fn in loop_calls.items()
        }
    )
    group = {key: jobs(fn, counts[key]) for key, fn in calls.items()}
    group.update({("loops", m): jobs(fn, counts[("loops", m)]) for m, fn in loop_calls.items()})
    samples = lab.interleaved(group, p["repeats"])

    # ms at the full size: elementwise scaled to 1M elements; the Python matmul from the
    # largest side it ran, scaled by the multiply-adds (side^3)
    scale = {ELEMENTWISE: FULL_ELEMENTS / n}
    loop_ns_per_madd = {}
    for m in p["loop_sides"]:
        per_call = [s.cpu_ns / counts[("loops", m)] for s in samples[("loops", m)]]
        loop_ns_per_madd[str(m)] = float(np.median(per_call)) / m**3
    pts = {}
    for kind, rungs in RUNGS.items():
        for x, rung in enumerate(rungs, 1):
            if (kind, rung) in group:
                smp, k, factor = samples[(kind, rung)], counts[(kind, rung)], scale.get(kind, 1)
            else:  # the Python triple loop
                smp, k, factor = (
                    samples[("loops", small)],
                    counts[("loops", small)],
                    (side / small) ** 3,
                )
            pts[(kind, rung)] = lab.add(
                series_name(kind, p),
                x,
                "rung",
                "ms at full size",
                *ys(smp, lambda s: s.cpu_ns / k * factor / 1e6),
            )
    return summarize(pts, p, results_equal, max_error, loop_ns_per_madd)


def summarize(
    pts: dict, p: dict, results_equal: bool, max_error: float, loop_ns_per_madd: dict
) -> dict:
    speedup, verdicts, measured = {}, {}, {}
    for kind, rungs in RUNGS.items():
        base = pts[(kind, rungs[0])]
        speedup[kind] = {r: base.median / pts[(kind, r)].median for r in rungs}
        verdicts[kind] = {r: compare(pts[(kind, r)], base).to_dict() for r in rungs[1:]}
        measured[kind] = {r: pts[(kind, r)].median for r in rungs}
    material_speedup = {
        k: v[RUNGS[k][0]] / v[RUNGS[k][-1] if k == MATMUL else "numpy a * b"]
        for k, v in MATERIAL_MS.items()
    }
    return {
        "elements": p["elements"],
        "full_elements": FULL_ELEMENTS,
        "elementwise_scaled": p["elements"] != FULL_ELEMENTS,
        "matmul_side": p["matmul_side"],
        "loop_sides": p["loop_sides"],
        "loop_scale": (p["matmul_side"] / max(p["loop_sides"])) ** 3,
        "loop_ns_per_multiply_add": loop_ns_per_madd,
        "ms": measured,
        "speedup": speedup,
        "verdicts": verdicts,
        "material_ms": MATERIAL_MS,
        "material_speedup": material_speedup,
        "results_equal": results_equal,
        "matmul_max_abs_error": max_error,
        "blas_threads": 1,
    }


def explain(summary: dict, lab: Lab) -> str:
    ms, sp, mat = summary["ms"], summary["speedup"], summary["material_ms"]
    side, small = summary["matmul_side"], max(summary["loop_sides"])
    lines = []
    for kind, rungs in RUNGS.items():
        title = (
            f"Elementwise product of {summary['full_elements']:,} float64 numbers"
            if kind == ELEMENTWISE
            else f"Matrix multiply {side}x{side} (float64)"
        )
        lines.append(
            f"{title}: rung, measured here (ms), the material's figure, speed over the Python loop"
        )
        for i, r in enumerate(rungs, 1):
            claim = mat[kind].get(r)
            lines.append(
                f"  {i}. {r:<20} {ms[kind][r]:>10.3f} ms   "
                f"{f'~{claim:g} ms' if claim is not None else '':>12}   "
                f"{_times(sp[kind][r]):>9}"
            )
    a = summary["elements"]
    if summary["elementwise_scaled"]:
        lines.append(
            f"(quick run: the elementwise rungs ran on {a:,} numbers and are scaled "
            f"to {summary['full_elements']:,})"
        )
    per = summary["loop_ns_per_multiply_add"]
    lines.append(
        f"The three Python loops ran on {small}x{small} and are scaled by ({side}/{small})^3 = "
        f"{summary['loop_scale']:.0f} to {side}x{side}: "
        + ", ".join(f"{v:.0f} ns per multiply-add at {m}x{m}" for m, v in per.items())
        + " (close figures mean the scaling holds). numpy's BLAS ran on one thread."
    )
    ew, mm = sp[ELEMENTWISE], sp[MATMUL]
    lines.append(
        f"On this machine one numpy call is {_times(ew['numpy a * b'])} faster than the Python "
        f"loop for the product (the material: {_times(summary['material_speedup'][ELEMENTWISE])})"
        f" and `@` {_times(mm['numpy a @ b'])} faster than three loops (the material: "
        f"{_times(summary['material_speedup'][MATMUL])}). A Python loop pays for the interpreter "
        f"on every number (a boxed float, a type check, a dispatch); a list comprehension "
        f"saves part of that ({_times(ew['list comprehension'])}); numpy and the compiled loop "
        f"run machine code over the whole array with vector instructions."
    )
    v = summary["verdicts"][ELEMENTWISE]["native loop"]
    nat = ms[ELEMENTWISE]["native loop"] / ms[ELEMENTWISE]["numpy a * b"]
    same = 2 / 3 < nat < 1.5
    lines.append(
        f"The compiled loop takes {nat:.2f}x numpy's time"
        + (
            ": the same machine work once the interpreter is out of the way"
            if same
            else ": not the same machine code (numpy's loop and the compiler's "
            "differ in unrolling, alignment or vector width)"
        )
        + f"; against the Python loop it is {v['text']}."
    )
    lines.append(
        f"numpy per row is {ms[MATMUL]['numpy per row'] / ms[MATMUL]['numpy a @ b']:.1f}x "
        f"slower than one `@`: {side} calls each pay numpy's overhead, and a row at a time "
        f"cannot reuse the blocks of b from the cache the way one GEMM does."
    )
    if not summary["results_equal"]:
        lines.append("RESULTS DIFFER between the elementwise rungs.")
    lines.append(f"Matrix products agree to {summary['matmul_max_abs_error']:.1e}.")
    lines.append(CPU_TIME_NOTE)
    return "\n".join(lines) + share_note(lab.points, "the thread", cpu_timed=True)


def _times(v: float) -> str:
    return f"{v:.1f}x" if v < 10 else f"{v:,.0f}x"


def markers(lab: Lab, summary: dict) -> list:
    return []
