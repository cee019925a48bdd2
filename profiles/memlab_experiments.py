"""The five memory-lab experiments: what each measures, how big, and what its figures mean.

Each experiment has a plan (sizes, repeats; `quick` makes it small), a memory need, a run that
adds points to a Lab and returns summary figures, and an explanation built from those figures:
the text says what this machine showed, including where a textbook effect did not show.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

import numpy as np

from partui.kernels.memlab import counters, mountain, partition, stride, traversal
from partui.kernels.memlab.buffers import aligned_empty

from .memlab_measure import RETAKES, Lab, MemPoint, Sample, compare, split_calls

KiB, MiB = 1024, 1024 ** 2
F32 = 4
GOOD_SHARE = 0.85  # below this a thread spent a real part of its time not running
RETAKE_BELOW = 0.9  # native threaded samples whose threads ran less than this are retaken


def _bytes(n: float | None) -> str:
    if n is None:
        return "?"
    for unit, scale in (("GiB", 1024 ** 3), ("MiB", MiB), ("KiB", KiB)):
        if n >= scale:
            v = n / scale
            return f"{v:.0f} {unit}" if v == int(v) else f"{v:.1f} {unit}"
    return f"{n:.0f} B"


def _ys(samples: list[Sample], to_y: Callable[[Sample], float]) -> tuple[list[float], list[float]]:
    return [to_y(s) for s in samples], [s.cpu_share for s in samples]


def _calibrated(lab: Lab, make_jobs: Callable[[int], list], units0: int, target_s: float) -> int:
    """How many units (passes, calls) make one sample last about `target_s`: one untimed
    run of `units0` units (which also warms caches and compiles) scaled to the target."""
    s = lab.sample(make_jobs(units0))
    return max(1, round(units0 * target_s * 1e9 / s.wall_ns))


def _filled(lab: Lab, count: int, value: float) -> np.ndarray:
    """A page-aligned float32 array of `count` elements set to `value`, written in pieces so
    that a cancel is seen while the pages are first touched (seconds for hundreds of MiB)."""
    a = aligned_empty(count, np.float32)
    piece = 4 * MiB
    for i in range(0, count, piece):
        lab.check()
        a[i:i + piece] = value
    return a


def _retake_note(summary: dict) -> str:
    retaken, disturbed = summary.get("samples_retaken", 0), summary.get("samples_disturbed", 0)
    if not retaken and not disturbed:
        return ""
    text = (f"\n{retaken} sample{'s were' if retaken != 1 else ' was'} retaken because a thread "
            f"was off its core more than {1 - RETAKE_BELOW:.0%} of the time (another program "
            f"needed it)")
    if disturbed:
        text += f"; {disturbed} stayed disturbed after {RETAKES} retakes"
    return text + "."


def _cache_markers(machine: dict) -> list[tuple[float, str]]:
    return [(machine[f"l{k}"], f"L{k} {_bytes(machine[f'l{k}'])}")
            for k in (1, 2, 3) if machine.get(f"l{k}")]


def _share_note(points: list[MemPoint], what: str, cpu_timed: bool = False) -> str:
    low = [p for p in points if p.cpu_share is not None and p.cpu_share < GOOD_SHARE]
    if not low:
        return ""
    worst = min(low, key=lambda p: p.cpu_share)
    where = (f"at {worst.series}, x={worst.x:g}, {what} ran {100 * worst.cpu_share:.0f}% of "
             f"the wall time")
    if cpu_timed:
        return (f"\nThe machine was busy ({where}). The times above are the thread's CPU time, "
                f"so waiting for the core is not counted, but another program may have "
                f"disturbed the caches.")
    return (f"\nCaution: {what} did not run all the time ({where}): another program was "
            f"using a core, so these points are pessimistic.")


CPU_TIME_NOTE = ("Times are the measuring thread's CPU time (not wall time): on a shared "
                 "machine, moments when another program holds the core are not counted.")


# ---- stride -----------------------------------------------------------------

STRIDE_SERIES = "strided read (native)"
KNEE_TOLERANCE = 0.15  # the knee: the first stride within 15% of the highest cost from there on


def plan_stride(quick: bool) -> dict:
    strides = ([1, 2, 4, 8, 12, 16, 24, 28, 32, 40, 48, 64] if quick else
               [1, 2, 3, 4, 6, 8, 12, 16, 20, 24, 28, 32, 36, 40, 48, 56, 64])
    return {"array_bytes": 384 * MiB, "strides": strides, "repeats": 3 if quick else 5,
            "chunk_bytes": 16 * MiB}


def need_stride(p: dict) -> int:
    return p["array_bytes"]


def find_knee(points: list[MemPoint], tolerance: float = KNEE_TOLERANCE) -> float | None:
    """The first stride whose cost is within `tolerance` of the highest cost at or after it:
    where the cost per touched element stops rising."""
    pts = sorted(points, key=lambda p: p.x)
    for i, p in enumerate(pts):
        if p.median >= (1 - tolerance) * max(q.median for q in pts[i:]):
            return p.x
    return None


def run_stride(lab: Lab, p: dict) -> dict:
    n = p["array_bytes"] // F32
    a = _filled(lab, n, 1.0)  # every page touched before timing
    kern = stride.native()
    piece = max(64, p["chunk_bytes"] // F32)

    def jobs(s: int) -> list:
        chunks = []
        for lo in range(0, n, piece):
            start = -(-lo // s) * s  # the first multiple of s in this piece
            chunks.append(partial(kern.strided_sum, a[start:lo + piece], s))
        return [chunks]

    lab.sample(jobs(1))  # untimed: compiles, maps the pages into the TLB once
    for s in p["strides"]:
        touched = len(range(0, n, s))
        samples = [lab.sample(jobs(s)) for _ in range(p["repeats"])]
        lab.add(STRIDE_SERIES, s, "stride (floats)", "ns per touched float",
                *_ys(samples, lambda smp: smp.cpu_ns / touched))
    return summarize_stride([q for q in lab.points if q.series == STRIDE_SERIES],
                            lab.machine.get("line") or 64, p["array_bytes"], lab.machine.get("l3"))


def summarize_stride(pts: list[MemPoint], line: int, array_bytes: int, l3: int | None) -> dict:
    """The knee over the strides that are not multiples of two lines, and how much more the
    multiples of two lines (128 B) cost than the other strides past one line."""
    lf = line // F32
    pair = 2 * lf
    regular = [q for q in pts if q.x % pair]
    multiples = [q for q in pts if q.x % pair == 0]
    by_x = {q.x: q for q in pts}
    summary: dict[str, Any] = {
        "array_bytes": array_bytes, "l3_bytes": l3, "line_bytes": line, "line_floats": lf,
        "knee_stride": find_knee(regular),
        "knee_rule": f"first stride within {KNEE_TOLERANCE:.0%} of the highest cost at that "
                     f"stride or beyond, over strides that are not multiples of {pair} floats",
        "cost_ns": {int(q.x): q.median for q in pts},
    }
    if 1.0 in by_x and float(lf) in by_x:
        summary["line_over_stride1"] = compare(by_x[float(lf)], by_x[1.0]).to_dict()
    knee = summary["knee_stride"]
    if knee and float(lf) in by_x and knee > lf:
        summary["knee_over_line"] = compare(by_x[knee], by_x[float(lf)]).to_dict()
    beyond = [q for q in regular if q.x > lf and (knee is None or q.x >= knee)]
    if multiples and beyond:
        pooled = MemPoint.of("stride", "other strides past the knee", 0, "", "",
                             [v for q in beyond for v in q.samples])
        worst = max(multiples, key=lambda q: q.median)
        summary["pair_multiples"] = {
            "strides": [int(q.x) for q in multiples],
            "over_others": {int(q.x): compare(q, pooled).to_dict() for q in multiples},
            "others_median_ns": pooled.median, "worst_stride": int(worst.x),
        }
    return summary


def explain_stride(summary: dict, lab: Lab) -> str:
    lf, knee, line = summary["line_floats"], summary["knee_stride"], summary["line_bytes"]
    cost = summary["cost_ns"]
    lines = [
        f"Reading every s-th float of a {_bytes(summary['array_bytes'])} array (this machine's "
        f"last-level cache: {_bytes(summary['l3_bytes'])}). Memory moves whole cache lines of "
        f"{line} B = {lf} floats, so up to stride {lf} a line fetched serves several reads and "
        f"the cost per read rises with the stride.",
    ]
    if 1 in cost and lf in cost:
        lines.append(f"Measured: {cost[1]:.2f} ns per float at stride 1, {cost[lf]:.2f} ns at "
                     f"stride {lf} (one read per line).")
    rise = summary.get("knee_over_line")
    if knee is not None and knee > lf and rise and rise["separated"]:
        lines.append(f"The cost keeps rising past one line and stops at stride {knee:g} "
                     f"({rise['text']} than at stride {lf}; {summary['knee_rule']}). That is "
                     f"consistent with the adjacent-line prefetcher, which completes every line "
                     f"fetched into its {2 * line}-byte pair: until the stride nears two lines, "
                     f"neighbouring reads still share some of those pairs.")
    elif knee is not None:
        lines.append(f"The cost stops rising at stride {knee:g} ({summary['knee_rule']}).")
    pm = summary.get("pair_multiples")
    if pm:
        worse = {s: c for s, c in pm["over_others"].items() if c["separated"] and c["ratio"] > 1}
        if worse:
            lines.append(
                "Strides that are a multiple of " + f"{2 * line} B ("
                + ", ".join(f"{s}" for s in worse) + " floats) cost more than the other long "
                f"strides (median {pm['others_median_ns']:.2f} ns): "
                + ", ".join(f"{s}: {c['text']}" for s, c in worse.items())
                + f". With them every read falls at the same place of a {2 * line}-byte pair; "
                  "the hardware counters that would show which prefetcher or memory channel "
                  "causes it are not available here, so a curve sampled only at powers of two "
                  "shows a rise up to 32 that is partly this effect.")
        else:
            lines.append(f"Multiples of {2 * line} B cost no more than the other long strides.")
    lines.append("The array is as large as the memory-lab limit allows; a part of it may still "
                 "be served from the last-level cache.")
    lines.append(CPU_TIME_NOTE)
    return "\n".join(lines) + _share_note(lab.points, "the reading thread", cpu_timed=True)


def markers_stride(lab: Lab, summary: dict) -> list:
    line = lab.machine.get("line") or 64
    out = [(line / F32, f"cache line {line} B")]
    if summary.get("knee_stride"):
        out.append((summary["knee_stride"], "cost stops rising"))
    return out


# ---- mountain ---------------------------------------------------------------

MOUNTAIN_SERIES = {"read (native)": "read", "read-modify-write (native)": "rmw",
                   "read (numpy a.sum())": "numpy"}
STEP_DROP = 1.15  # a step: bandwidth falls by at least 15% between neighbouring sizes


def plan_mountain(quick: bool) -> dict:
    if quick:
        sizes = [8 * KiB << i for i in range(14)]  # 8 KiB .. 64 MiB
    else:
        sizes = []
        s = 8 * KiB
        while s <= 512 * MiB:
            sizes += [s, s * 3 // 2]
            s *= 2
        sizes = [x for x in sizes if x <= 512 * MiB]
    return {"sizes": sizes, "repeats": 3 if quick else 5, "target_s": 0.01 if quick else 0.02,
            "chunk_bytes": 32 * MiB}


def need_mountain(p: dict) -> int:
    return max(p["sizes"])


def run_mountain(lab: Lab, p: dict) -> dict:
    buf = _filled(lab, max(p["sizes"]) // F32, 1.0)
    kern = mountain.native()
    funcs = {"read": kern.read_sum, "rmw": kern.read_modify_write,
             "numpy": mountain.numpy_read_sum}
    chunk = p["chunk_bytes"]
    for size in p["sizes"]:
        a = buf[:size // F32]

        def jobs(kind: str, passes: int) -> list:
            fn = funcs[kind]
            if size <= chunk:
                return [[partial(fn, a, c) for c in split_calls(passes, chunk // size)]]
            pieces = [a[i:i + chunk // F32] for i in range(0, a.size, chunk // F32)]
            return [[partial(fn, piece, 1) for _ in range(passes) for piece in pieces]]

        passes = {}
        for series, kind in MOUNTAIN_SERIES.items():
            units0 = max(1, (4 * MiB if kind == "numpy" else 32 * MiB) // size)
            passes[kind] = _calibrated(lab, partial(jobs, kind), units0, p["target_s"])
        samples = lab.interleaved({s: jobs(k, passes[k]) for s, k in MOUNTAIN_SERIES.items()},
                                  p["repeats"])
        for series, kind in MOUNTAIN_SERIES.items():
            moved = size * passes[kind]
            lab.add(series, size, "working set (bytes)", "GB/s",
                    *_ys(samples[series], lambda smp: moved / smp.cpu_ns))
    return summarize_mountain(lab.points, lab.machine)


def _regions(machine: dict) -> list[tuple[str, float, float]]:
    """Size ranges safely inside each level: [2 x previous level, level / 2]."""
    out, lo = [], 0.0
    for k in (1, 2, 3):
        size = machine.get(f"l{k}")
        if not size:
            return out
        out.append((f"L{k}", lo, size / 2))
        lo = 2 * size
    out.append(("memory", lo, float("inf")))
    return out


def find_steps(points: list[MemPoint], drop: float = STEP_DROP) -> list[dict]:
    """Where bandwidth falls between neighbouring sizes by `drop` or more with spreads apart;
    falls over several neighbouring sizes count as one step."""
    pts = sorted(points, key=lambda p: p.x)
    steps: list[dict] = []
    for a, b in zip(pts, pts[1:]):
        if a.median >= drop * b.median and a.min > b.max:
            if steps and steps[-1]["to_size"] == a.x:
                steps[-1].update(to_size=b.x, to_gbs=b.median)
            else:
                steps.append({"from_size": a.x, "to_size": b.x,
                              "from_gbs": a.median, "to_gbs": b.median})
    return steps


def summarize_mountain(points: list[MemPoint], machine: dict) -> dict:
    regions = {}
    for series in MOUNTAIN_SERIES:
        pts = [p for p in points if p.series == series]
        regions[series] = {}
        for name, lo, hi in _regions(machine):
            inside = [p.median for p in pts if lo <= p.x <= hi]
            regions[series][name] = float(np.median(inside)) if inside else None
    steps = {}
    for series in ("read (native)", "read-modify-write (native)"):
        steps[series] = find_steps([p for p in points if p.series == series])
        for step in steps[series]:
            step["cache"] = _cache_at(step, machine)
    smallest = None
    read_pts = {p.x: p for p in points if p.series == "read (native)"}
    numpy_pts = {p.x: p for p in points if p.series == "read (numpy a.sum())"}
    if read_pts and numpy_pts:
        size = min(set(read_pts) & set(numpy_pts))
        smallest = {"size": size, "numpy_gbs": numpy_pts[size].median,
                    "numpy_us": size / numpy_pts[size].median / 1e3,
                    "native_us": size / read_pts[size].median / 1e3}
    return {"caches": {f"L{k}": machine.get(f"l{k}") for k in (1, 2, 3)},
            "gbs_by_level": regions, "steps": steps, "smallest": smallest,
            "largest_size": max((p.x for p in points), default=None)}


def _cache_at(step: dict, machine: dict) -> str | None:
    """The cache level whose end falls within a step (from half its first size to twice its
    last), or None when the step is not at a cache boundary."""
    for k in (1, 2, 3):
        size = machine.get(f"l{k}")
        if size and step["from_size"] / 2 <= size <= 2 * step["to_size"]:
            return f"L{k}"
    return None


def explain_mountain(summary: dict, lab: Lab) -> str:
    caches = summary["caches"]
    levels = summary["gbs_by_level"]
    read, rmw, npy = (levels.get(s, {}) for s in MOUNTAIN_SERIES)
    lines = [
        "Bandwidth while sweeping a working set again and again: small sets stay in a fast "
        "cache, larger ones spill to the next level, so the curve falls in steps where the "
        f"caches end (sysfs: L1 {_bytes(caches['L1'])}, L2 {_bytes(caches['L2'])}, "
        f"L3 {_bytes(caches['L3'])}; marked on the chart).",
    ]
    cells = []
    for name in ("L1", "L2", "L3", "memory"):
        if read.get(name) is not None:
            cells.append(f"{name} {read[name]:.0f}")
    if cells:
        lines.append("Native read, median GB/s well inside each level: " + ", ".join(cells) + ".")
    for series, steps in summary["steps"].items():
        kind = series.replace(" (native)", "")
        if not steps:
            lines.append(f"No step in {kind} stood out of the noise (a fall of "
                         f"{STEP_DROP - 1:.0%} or more with spreads apart).")
            continue
        lines.append(f"Steps found in {kind}: " + "; ".join(
            f"{_bytes(s['from_size'])} -> {_bytes(s['to_size'])}: {s['from_gbs']:.0f} -> "
            f"{s['to_gbs']:.0f} GB/s ({'end of ' + s['cache'] if s['cache'] else 'at no cache boundary'})"
            for s in steps) + ".")
    found = {st["cache"] for steps in summary["steps"].values() for st in steps}
    read_steps = {st["cache"] for st in summary["steps"].get("read (native)", [])}
    if "L1" in found and "L1" not in read_steps:
        lines.append("Reading alone shows no L1 step: this loop reads about as fast from L2 as "
                     "from L1. Read-modify-write, which also writes every line back, shows it.")
    l3 = caches.get("L3")
    l3_steps = [st for steps in summary["steps"].values() for st in steps if st["cache"] == "L3"]
    if l3 and l3_steps and min(st["to_size"] for st in l3_steps) < l3:
        lines.append(f"The fall to main memory comes before the L3 size from sysfs "
                     f"({_bytes(l3)}): the L3 is shared by every core of the host, so one "
                     f"program probably gets only part of it.")
    elif l3 and summary.get("largest_size") and summary["largest_size"] < 2 * l3 \
            and "L3" not in found:
        lines.append(f"The largest working set ({_bytes(summary['largest_size'])}) is not well "
                     "beyond L3, so the step to main memory is not, or only partly, seen.")
    if rmw.get("L1") and read.get("L1"):
        lines.append(f"Read-modify-write moves each byte in and out: {rmw['L1']:.0f} GB/s in L1 "
                     "(array bytes per second).")
    small = summary.get("smallest")
    if small:
        lines.append(
            f"numpy's a.sum() reaches only {small['numpy_gbs']:.0f} GB/s on "
            f"{_bytes(small['size'])}: a call takes {small['numpy_us']:.2f} us where the native "
            f"loop needs {small['native_us']:.2f} us for the same bytes. The per-call overhead "
            f"dominates every L1-sized set and hides the L1 step.")
    lines.append(CPU_TIME_NOTE)
    return "\n".join(lines) + _share_note(lab.points, "the sweeping thread", cpu_timed=True)


def markers_mountain(lab: Lab, summary: dict) -> list:
    return _cache_markers(lab.machine)


# ---- traversal --------------------------------------------------------------

TRAVERSAL_MATRIX = {"row-wise (native)": "rows", "column-wise (native)": "columns",
                    "row slices (numpy)": "numpy_rows", "column slices (numpy)": "numpy_columns"}
TRAVERSAL_CONV = {"NCHW conv (native)": "nchw", "NHWC conv (native)": "nhwc"}
CONV_SHAPE = (32, 13, 13, 64)  # conv2 of the network: C, H, W in; O out


def plan_traversal(quick: bool) -> dict:
    return {"sides": [256, 1024, 2048] if quick else [256, 1024, 4096],
            "conv_batches": [8, 32] if quick else [8, 64],
            "repeats": 3 if quick else 5, "target_s": 0.015 if quick else 0.03}


def need_traversal(p: dict) -> int:
    c, h, w, o = CONV_SHAPE
    b = max(p["conv_batches"])
    conv = 2 * b * (c * h * w + o * (h - 2) * (w - 2)) * F32
    return max(p["sides"]) ** 2 * F32 + conv


def run_traversal(lab: Lab, p: dict) -> dict:
    kern = traversal.native()
    funcs = {"rows": kern.sum_rows, "columns": kern.sum_columns,
             "numpy_rows": traversal.numpy_sum_rows, "numpy_columns": traversal.numpy_sum_columns}
    summary: dict[str, Any] = {"matrix": {}, "conv": {}}
    for side in p["sides"]:
        m = (np.arange(side * side, dtype=np.int64) % 7).astype(np.float32).reshape(side, side)
        sums = {kind: float(fn(m)) for kind, fn in funcs.items()}  # first calls also compile
        expected = float(m.sum(dtype=np.float64))

        def jobs(kind: str, calls: int) -> list:
            return [[partial(funcs[kind], m)] * calls]
        calls = {k: _calibrated(lab, partial(jobs, k), 1, p["target_s"]) for k in funcs}
        samples = lab.interleaved({s: jobs(k, calls[k]) for s, k in TRAVERSAL_MATRIX.items()},
                                  p["repeats"])
        pts = {}
        for series, kind in TRAVERSAL_MATRIX.items():
            elements = side * side * calls[kind]
            pts[kind] = lab.add(series, m.nbytes, "data size (bytes)", "ns per element",
                                *_ys(samples[series], lambda smp: smp.cpu_ns / elements))
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
        args = {"nchw": (kern.conv_nchw, x, weight, out),
                "nhwc": (kern.conv_nhwc, x_hwc, weight_hwc, out_hwc)}

        def jobs(kind: str, calls: int) -> list:
            fn, *a = args[kind]
            return [[partial(fn, *a)] * calls]
        calls = {k: _calibrated(lab, partial(jobs, k), 1, p["target_s"]) for k in args}
        samples = lab.interleaved({s: jobs(k, calls[k]) for s, k in TRAVERSAL_CONV.items()},
                                  p["repeats"])
        macs = batch * o * (h - 2) * (w - 2) * c * 9
        pts = {}
        for series, kind in TRAVERSAL_CONV.items():
            pts[kind] = lab.add(series, x.nbytes, "data size (bytes)", "ns per element",
                                *_ys(samples[series], lambda smp: smp.cpu_ns / (macs * calls[kind])))
        summary["conv"][str(x.nbytes)] = {
            "batch": batch,
            "max_abs_difference": float(np.abs(out - out_hwc.transpose(0, 3, 1, 2)).max()),
            "nchw_over_nhwc": compare(pts["nchw"], pts["nhwc"]).to_dict(),
        }
    return summary


def explain_traversal(summary: dict, lab: Lab) -> str:
    lines = ["A C-ordered matrix keeps each row contiguous: row by row uses every float of each "
             "cache line fetched (and vector instructions); column by column jumps a whole row "
             "each step, one line per float, and once the matrix outgrows the caches every step "
             "is a miss."]
    for nbytes, d in summary["matrix"].items():
        lines.append(f"{d['side']}x{d['side']} ({_bytes(int(nbytes))}): columns "
                     f"{d['columns_over_rows']['text']} than rows (native); numpy slices: "
                     f"columns {d['numpy_columns_over_rows']['text']}."
                     + ("" if d["sums_equal"] else " SUMS DIFFER: a kernel is wrong."))
    if summary["matrix"]:
        lines.append("With numpy slices, small matrices are dominated by the per-call overhead "
                     "(one call per row or column), which narrows the gap.")
    lines.append("Convolution (conv2, 3x3, 32->64 channels; y = ns per multiply-add): for each "
                 "output pixel the 3x3xC patch under it. In NHWC it is 3 runs of 3xC contiguous "
                 "floats, in NCHW C x 3 runs of only 3, spread over C planes.")
    for nbytes, d in summary["conv"].items():
        lines.append(f"batch {d['batch']} (input {_bytes(int(nbytes))}): NCHW "
                     f"{d['nchw_over_nhwc']['text']} than NHWC; outputs agree to "
                     f"{d['max_abs_difference']:.1e}.")
    if summary["conv"]:
        lines.append("One sample's input fits in the L1/L2 caches here, so the gap is mostly "
                     "about short runs: the compiler cannot vectorise runs of 3 and touches more "
                     "lines per patch, not misses to main memory.")
    lines.append(CPU_TIME_NOTE)
    return "\n".join(lines) + _share_note(lab.points, "the thread", cpu_timed=True)


def markers_traversal(lab: Lab, summary: dict) -> list:
    return _cache_markers(lab.machine)


# ---- false sharing ----------------------------------------------------------

FS_SERIES = {"plain, adjacent": ("plain", False), "plain, padded": ("plain", True),
             "atomic, adjacent": ("atomic", False), "atomic, padded": ("atomic", True)}


def plan_false_sharing(quick: bool, cores: int = 2) -> dict:
    threads = sorted({1, 2} | {t for t in (4, 8) if t <= cores} | {max(2, cores)})
    return {"threads": threads, "repeats": 5 if quick else 9,
            "increments": {"plain": 4_000_000, "atomic": 1_500_000} if quick else
                          {"plain": 10_000_000, "atomic": 4_000_000},
            "chunk": 1_000_000}


def need_false_sharing(p: dict) -> int:
    return 64 * KiB


def run_false_sharing(lab: Lab, p: dict) -> dict:
    kern = counters.native()
    line = lab.machine.get("line") or 64
    fns = {"plain": kern.count_plain, "atomic": kern.count_atomic}
    counts_ok = True
    for threads in p["threads"]:
        c = counters.make_counters(threads, line)

        def jobs(kind: str, padded: bool, n: int) -> list:
            return [[partial(fns[kind], c, slot, k) for k in split_calls(n, p["chunk"])]
                    for slot in counters.slots(threads, padded, line)]

        def reset(_series: str) -> None:
            c[...] = 0

        def check(series: str, n: int | None = None) -> None:
            nonlocal counts_ok
            kind, padded = FS_SERIES[series]
            n = p["increments"][kind] if n is None else n
            counts_ok &= all(c[i] == n for i in counters.slots(threads, padded, line))

        for s, (kind, padded) in FS_SERIES.items():  # untimed: compiles, checks the counts
            reset(s)
            lab.sample(jobs(kind, padded, 1000))
            check(s, 1000)
        group = {s: jobs(kind, padded, p["increments"][kind])
                 for s, (kind, padded) in FS_SERIES.items()}
        samples = lab.interleaved(group, p["repeats"], before=reset, after=check,
                                  min_share={s: RETAKE_BELOW for s in FS_SERIES})
        for s, (kind, padded) in FS_SERIES.items():
            n = p["increments"][kind]
            lab.add(s, threads, "threads", "ns per increment (each thread)",
                    *_ys(samples[s], lambda smp: smp.wall_ns / n))
    return summarize_false_sharing(lab, p, counts_ok)


def summarize_false_sharing(lab: Lab, p: dict, counts_ok: bool) -> dict:
    top = max(p["threads"])
    get = {s: next(q for q in lab.points if q.series == s and q.x == top) for s in FS_SERIES}
    atomic = compare(get["atomic, adjacent"], get["atomic, padded"])
    plain = compare(get["plain, adjacent"], get["plain, padded"])
    by_threads = {}
    for t in p["threads"]:
        pt = {s: next(q for q in lab.points if q.series == s and q.x == t) for s in FS_SERIES}
        by_threads[str(t)] = {
            "atomic_adjacent_over_padded": pt["atomic, adjacent"].median / pt["atomic, padded"].median,
            "plain_adjacent_over_padded": pt["plain, adjacent"].median / pt["plain, padded"].median,
        }
    return {
        "threads": top,
        "atomic_adjacent_over_padded": atomic.ratio,
        "plain_adjacent_over_padded": plain.ratio,
        "atomic_verdict": atomic.to_dict(), "plain_verdict": plain.to_dict(),
        "by_threads": by_threads,
        "ns_per_increment": {s: get[s].median for s in FS_SERIES},
        "cpu_share": {s: get[s].cpu_share for s in FS_SERIES},
        "counts_ok": counts_ok,
        "line_bytes": lab.machine.get("line") or 64,
        **lab.counts(),
    }


def explain_false_sharing(summary: dict, lab: Lab) -> str:
    t, ns = summary["threads"], summary["ns_per_increment"]
    a, pl = summary["atomic_verdict"], summary["plain_verdict"]
    lines = [
        f"Each of {t} threads increments its own counter; the counters sit side by side in one "
        f"{summary['line_bytes']}-byte cache line (adjacent) or one line apart (padded). No "
        f"counter is shared, yet adjacent counters share a line, and a core must own a line to "
        f"write it: the line ping-pongs between the cores.",
        f"Atomic increments (lock add), {t} threads: adjacent {ns['atomic, adjacent']:.1f} ns, "
        f"padded {ns['atomic, padded']:.1f} ns per increment; adjacent against padded: "
        f"{a['text']}. A locked write must own "
        f"the line and finish before the next one starts, so every increment waits for the "
        f"line to come back.",
        f"Plain increments (stored every time, not locked): adjacent {ns['plain, adjacent']:.1f}"
        f" ns, padded {ns['plain, padded']:.1f} ns; adjacent against padded: {pl['text']}."
        f"{' The textbook slowdown does not show here' if not _slower(pl) else ' Here it shows, but far less than for atomics'}: "
        f"the store buffer lets a core keep incrementing while the line is away (each "
        f"increment reads its own pending store), and when the line comes back the queued "
        f"stores drain in a burst: one line transfer serves dozens of increments.",
    ]
    if not _slower(a):
        lines.append("The atomic effect did not show in this run. It needs the threads on two "
                     "cores at the same moment; when another program keeps a core busy they "
                     "take turns on one core and never fight over the line (see below).")
    if not summary["counts_ok"]:
        lines.append("COUNTERS WRONG: a counter did not reach its count.")
    return "\n".join(lines) + _retake_note(summary) + _share_note(
        [q for q in lab.points if q.x > 1], "the threads")


def _slower(c: dict) -> bool:
    return c["separated"] and c["ratio"] > 1


def markers_false_sharing(lab: Lab, summary: dict) -> list:
    return []


# ---- partition --------------------------------------------------------------

PARTITION_SERIES = {"native cyclic": ("native", "cyclic"), "native block": ("native", "block"),
                    "native 1 thread": ("native", "one"), "numpy cyclic": ("numpy", "cyclic"),
                    "numpy block": ("numpy", "block"), "numpy 1 thread": ("numpy", "one")}


def plan_partition(quick: bool, cores: int = 2) -> dict:
    sizes = ([16 * KiB, 256 * KiB, 4 * MiB, 32 * MiB] if quick else
             [16 * KiB, 128 * KiB, 1 * MiB, 8 * MiB, 64 * MiB, 384 * MiB])
    # short samples: on a shared machine a short one more often finds both cores free
    return {"sizes": sizes, "threads": max(2, cores), "repeats": 3 if quick else 5,
            "target_s": 0.01 if quick else 0.015,
            "chunk_elements": {"native": 4_000_000, "numpy": 1_000_000}}


def need_partition(p: dict) -> int:
    return max(p["sizes"])


def partition_jobs(a: np.ndarray, impl: str, layout: str, threads: int, passes: int,
                   chunk: int, kern=None) -> list:
    """The work of `passes` passes as thread jobs; layout 'one' is all of it on one thread."""
    length = a.size
    make = partition.block_sweeps if layout == "block" else partition.cyclic_sweeps
    per_worker = [make(length, k, threads) for k in range(threads)]
    elements = partition.sweep_elements(per_worker[0], threads)
    if impl == "numpy" and layout != "block":
        # as many numpy calls per pass as block's sweeps: the same per-call overhead
        per_worker = [partition.split_sweeps(sw, threads, -(-elements // threads))
                      for sw in per_worker]

    def chunks(sweeps) -> list:
        if elements > chunk:  # long passes: each pass in pieces, in the same order
            pieces = partition.split_sweeps(sweeps, threads, chunk)
            return [_sweep_call(a, [pc], threads, 1, impl, kern) for _ in range(passes)
                    for pc in pieces]
        return [_sweep_call(a, sweeps, threads, n, impl, kern)
                for n in split_calls(passes, chunk // max(1, elements))]

    jobs = [chunks(sw) for sw in per_worker]
    return [[c for job in jobs for c in job]] if layout == "one" else jobs


def _sweep_call(a, sweeps, step, passes, impl, kern):
    if impl == "numpy":
        return partial(partition.numpy_add_one, partition.numpy_views(a, sweeps, step), passes)
    starts = np.array([s for s, _ in sweeps], np.int64)
    stops = np.array([e for _, e in sweeps], np.int64)
    return partial(kern.add_one, a, starts, stops, step, passes)


def run_partition(lab: Lab, p: dict) -> dict:
    kern = partition.native()
    threads = p["threads"]
    buf = _filled(lab, max(p["sizes"]) // F32, 0.0)
    summary: dict[str, Any] = {"threads": threads, "sizes": {}}
    for size in p["sizes"]:
        a = buf[:size // F32]
        a[...] = 0.0
        passes, ok = {}, True
        for impl in ("native", "numpy"):
            chunk = p["chunk_elements"][impl]
            units0 = max(1, (4_000_000 if impl == "native" else 400_000) // a.size)
            passes[impl] = _calibrated(
                lab, lambda n, impl=impl, chunk=chunk: partition_jobs(a, impl, "one", threads, n,
                                                                      chunk, kern),
                units0, p["target_s"])
        for series, (impl, layout) in PARTITION_SERIES.items():  # untimed, checks the sums
            a[...] = 0.0
            lab.sample(partition_jobs(a, impl, layout, threads, 1, p["chunk_elements"][impl], kern))
            ok &= bool((a == 1.0).all())
        group = {s: partition_jobs(a, impl, layout, threads, passes[impl],
                                   p["chunk_elements"][impl], kern)
                 for s, (impl, layout) in PARTITION_SERIES.items()}
        samples = lab.interleaved(group, p["repeats"], min_share={
            s: RETAKE_BELOW for s, (impl, _) in PARTITION_SERIES.items() if impl == "native"})
        pts = {}
        for series, (impl, layout) in PARTITION_SERIES.items():
            updates = a.size * passes[impl]
            pts[series] = lab.add(series, size, "array size (bytes)", "ns per element update",
                                  *_ys(samples[series], lambda smp: smp.wall_ns / updates))
        d: dict[str, Any] = {"updates_ok": ok}
        for impl in ("native", "numpy"):
            d[f"{impl}_cyclic_over_block"] = compare(pts[f"{impl} cyclic"],
                                                     pts[f"{impl} block"]).to_dict()
            d[f"{impl}_block_over_one_thread"] = compare(pts[f"{impl} block"],
                                                         pts[f"{impl} 1 thread"]).to_dict()
            d[f"{impl}_cyclic_over_one_thread"] = compare(pts[f"{impl} cyclic"],
                                                          pts[f"{impl} 1 thread"]).to_dict()
            d[f"{impl}_cpu_share"] = min(pts[f"{impl} block"].cpu_share,
                                         pts[f"{impl} cyclic"].cpu_share)
        summary["sizes"][str(size)] = d
    summary.update(lab.counts())
    return summary


def explain_partition(summary: dict, lab: Lab) -> str:
    t = summary["threads"]
    lines = [
        f"{t} threads add 1 to every element of an array. Cyclic: thread k updates a[k::{t}] "
        f"(every {_nth(t)} element, like the cook who makes every {_nth(t)} sandwich), so every cache "
        f"line is written by all threads. Block: each thread owns one part and updates it with "
        f"the same stride, in {t} sweeps: the same work, the same stride, the same lines per "
        f"thread, but no line shared. '1 thread' does all of it alone (the baseline).",
    ]
    for size, d in summary["sizes"].items():
        cells = [f"{_bytes(int(size))}:"]
        for impl in ("native", "numpy"):
            if impl == "native" and d["native_cpu_share"] < GOOD_SHARE:
                cells.append(f"native: the threads seldom ran at the same time (each ran "
                             f"{100 * d['native_cpu_share']:.0f}% of the time: another program "
                             f"held a core), no verdict;")
                continue
            cells.append(f"{impl}: cyclic vs block {d[f'{impl}_cyclic_over_block']['text']}, "
                         f"{t} threads (block) vs 1 thread "
                         f"{d[f'{impl}_block_over_one_thread']['text']};")
        if not d["updates_ok"]:
            cells.append("UPDATES WRONG;")
        lines.append(" ".join(cells)[:-1] + ".")
    def slower(d: dict, key: str) -> bool:
        return d[key]["separated"] and d[key]["ratio"] > 1

    sizes = summary["sizes"]
    shared = [sz for sz, d in sizes.items()
              if d["native_cpu_share"] >= GOOD_SHARE and slower(d, "native_cyclic_over_block")]
    if shared:
        lines.append(
            "Native cyclic is slower than block at " + ", ".join(
                f"{_bytes(int(sz))} ({sizes[sz]['native_cyclic_over_block']['text']})"
                for sz in shared)
            + ": false sharing. Both threads write into every line, so each line keeps moving "
              "between the cores. Beyond the caches both layouts wait on main memory, which "
              "narrows the gap.")
    elif any(d["native_cpu_share"] >= GOOD_SHARE for d in sizes.values()):
        lines.append("Native cyclic was not clearly slower than block in this run.")
    slow_numpy = [sz for sz, d in sizes.items() if slower(d, "numpy_block_over_one_thread")]
    if slow_numpy:
        d = sizes[slow_numpy[0]]
        lines.append(
            f"numpy with {t} threads is SLOWER than one thread at "
            + ", ".join(_bytes(int(sz)) for sz in slow_numpy)
            + f" ({d['numpy_block_over_one_thread']['text']} at {_bytes(int(slow_numpy[0]))}, "
              f"each thread running {100 * d['numpy_cpu_share']:.0f}% of the time): each "
              "`a[k::n] += 1` on a small slice is mostly Python and numpy call overhead, done "
              "while holding the GIL, so the threads take turns and pay for every hand-off. "
              "That is a GIL effect, not a cache effect.")
    return "\n".join(lines) + _retake_note(summary) + _share_note(
        [q for q in lab.points if q.series.startswith("native") and "1 thread" not in q.series],
        "the native threads")


def _nth(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def markers_partition(lab: Lab, summary: dict) -> list:
    return _cache_markers(lab.machine)


# ---- registry ---------------------------------------------------------------

@dataclass(frozen=True)
class Spec:
    description: str
    plan: Callable[..., dict]
    need: Callable[[dict], int]
    run: Callable[[Lab, dict], dict]
    explain: Callable[[dict, Lab], str]
    markers: Callable[[Lab, dict], list]
    uses_cores: bool = False


SPECS: dict[str, Spec] = {
    "stride": Spec("time per touched float against stride, 1 to 64 floats",
                   plan_stride, need_stride, run_stride, explain_stride, markers_stride),
    "mountain": Spec("bandwidth against working-set size, 8 KB to 512 MB",
                     plan_mountain, need_mountain, run_mountain, explain_mountain,
                     markers_mountain),
    "traversal": Spec("rows vs columns of a matrix; NCHW vs NHWC convolution",
                      plan_traversal, need_traversal, run_traversal, explain_traversal,
                      markers_traversal),
    "false-sharing": Spec("counters in one cache line vs padded, plain and atomic",
                          plan_false_sharing, need_false_sharing, run_false_sharing,
                          explain_false_sharing, markers_false_sharing, uses_cores=True),
    "partition": Spec("cyclic a[k::N] vs block partition, native and numpy",
                      plan_partition, need_partition, run_partition, explain_partition,
                      markers_partition, uses_cores=True),
}
