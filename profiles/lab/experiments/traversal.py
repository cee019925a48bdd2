"""Traversal order: rows against columns of a matrix; NCHW against NHWC convolution."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from partui.kernels.lab import traversal as kernels
from partui.profiles.lab.experiments.common import (
    CPU_TIME_NOTE,
    F32,
    cache_markers,
    calibrated,
    share_note,
    size_text,
    ys,
)
from partui.profiles.lab.measure import Lab, compare

TRAVERSAL_MATRIX = {
    "row-wise (native)": "rows",
    "column-wise (native)": "columns",
    "row slices (numpy)": "numpy_rows",
    "column slices (numpy)": "numpy_columns",
}
TRAVERSAL_CONV = {"NCHW conv (native)": "nchw", "NHWC conv (native)": "nhwc"}
CONV_SHAPE = (32, 13, 13, 64)  # conv2 of the network: C, H, W in; O out


def plan(quick: bool) -> dict:
    return {
        "sides": [256, 1024, 2048] if quick else [256, 1024, 4096],
        "conv_batches": [8, 32] if quick else [8, 64],
        "repeats": 3 if quick else 5,
        "target_s": 0.015 if quick else 0.03,
    }


def need(p: dict) -> int:
    c, h, w, o = CONV_SHAPE
    b = max(p["conv_batches"])
    conv = 2 * b * (c * h * w + o * (h - 2) * (w - 2)) * F32
    return max(p["sides"]) ** 2 * F32 + conv


def run(lab: Lab, p: dict) -> dict:
    kern = kernels.native()
    funcs = {
        "rows": kern.sum_rows,
        "columns": kern.sum_columns,
        "numpy_rows": kernels.numpy_sum_rows,
        "numpy_columns": kernels.numpy_sum_columns,
    }
    summary: dict[str, Any] = {"matrix": {}, "conv": {}}
    for side in p["sides"]:
        m = (np.arange(side * side, dtype=np.int64) % 7).astype(np.float32).reshape(side, side)
        sums = {kind: float(fn(m)) for kind, fn in funcs.items()}  # first calls also compile
        expected = float(m.sum(dtype=np.float64))

        def jobs(kind: str, calls: int) -> list:
            return [[partial(funcs[kind], m)] * calls]

        calls = {k: calibrated(lab, partial(jobs, k), 1, p["target_s"]) for k in funcs}
        samples = lab.interleaved(
            {s: jobs(k, calls[k]) for s, k in TRAVERSAL_MATRIX.items()}, p["repeats"]
        )
        pts = {}
        for series, kind in TRAVERSAL_MATRIX.items():
            elements = side * side * calls[kind]
            pts[kind] = lab.add(
                series,
                m.nbytes,
                "data size (bytes)",
                "ns per element",
                *ys(samples[series], lambda smp: smp.cpu_ns / elements),
            )
        summary["matrix"][str(m.nbytes)] = {
            "side": side,
            "sums_equal": all(v == expected for v in sums.values()),
            "columns_over_rows": compare(pts["columns"], pts["rows"]).to_dict(),
            "numpy_columns_over_rows": compare(pts["numpy_columns"], pts["numpy_rows"]).to_dict(),
        }
    c, h, w, o = CONV_SHAPE
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((o, c, 3, 3)).astype(np.float32)
    weight_hwc = np.ascontiguousarray(weight.transpose(0, 2, 3, 1))
    for batch in p["conv_batches"]:
        x = rng.standard_normal((batch, c, h, w)).astype(np.float32)
        x_hwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        out = np.empty((batch, o, h - 2, w - 2), np.float32)
        out_hwc = np.empty((batch, h - 2, w - 2, o), np.float32)
        args = {
            "nchw": (kern.conv_nchw, x, weight, out),
            "nhwc": (kern.conv_nhwc, x_hwc, weight_hwc, out_hwc),
        }

        def jobs(kind: str, calls: int) -> list:
            fn, *a = args[kind]
            return [[partial(fn, *a)] * calls]

        calls = {k: calibrated(lab, partial(jobs, k), 1, p["target_s"]) for k in args}
        samples = lab.interleaved(
            {s: jobs(k, calls[k]) for s, k in TRAVERSAL_CONV.items()}, p["repeats"]
        )
        macs = batch * o * (h - 2) * (w - 2) * c * 9
        pts = {}
        for series, kind in TRAVERSAL_CONV.items():
            pts[kind] = lab.add(
                series,
                x.nbytes,
                "data size (bytes)",
                "ns per element",
                *ys(samples[series], lambda smp: smp.cpu_ns / (macs * calls[kind])),
            )
        summary["conv"][str(x.nbytes)] = {
            "batch": batch,
            "max_abs_difference": float(np.abs(out - out_hwc.transpose(0, 3, 1, 2)).max()),
            "nchw_over_nhwc": compare(pts["nchw"], pts["nhwc"]).to_dict(),
        }
    return summary


def explain(summary: dict, lab: Lab) -> str:
    lines = [
        "A C-ordered matrix keeps each row contiguous: row by row uses every float of each "
        "cache line fetched (and vector instructions); column by column jumps a whole row "
        "each step, one line per float, and once the matrix outgrows the caches every step "
        "is a miss."
    ]
    for nbytes, d in summary["matrix"].items():
        lines.append(
            f"{d['side']}x{d['side']} ({size_text(int(nbytes))}): columns "
            f"{d['columns_over_rows']['text']} than rows (native); numpy slices: "
            f"columns {d['numpy_columns_over_rows']['text']}."
            + ("" if d["sums_equal"] else " SUMS DIFFER: a kernel is wrong.")
        )
    if summary["matrix"]:
        lines.append(
            "With numpy slices, small matrices are dominated by the per-call overhead "
            "(one call per row or column), which narrows the gap."
        )
    lines.append(
        "Convolution (conv2, 3x3, 32->64 channels; y = ns per multiply-add): for each "
        "output pixel the 3x3xC patch under it. In NHWC it is 3 runs of 3xC contiguous "
        "floats, in NCHW C x 3 runs of only 3, spread over C planes."
    )
    for nbytes, d in summary["conv"].items():
        lines.append(
            f"batch {d['batch']} (input {size_text(int(nbytes))}): NCHW "
            f"{d['nchw_over_nhwc']['text']} than NHWC; outputs agree to "
            f"{d['max_abs_difference']:.1e}."
        )
    if summary["conv"]:
        lines.append(
            "One sample's input fits in the L1/L2 caches here, so the gap is mostly "
            "about short runs: the compiler cannot vectorise runs of 3 and touches more "
            "lines per patch, not misses to main memory."
        )
    lines.append(CPU_TIME_NOTE)
    return "\n".join(lines) + share_note(lab.points, "the thread", cpu_timed=True)


def markers(lab: Lab, summary: dict) -> list:
    return cache_markers(lab.machine)
