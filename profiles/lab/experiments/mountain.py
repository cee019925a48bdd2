"""The memory mountain: bandwidth against working-set size, with steps where caches end."""

from __future__ import annotations

from functools import partial

import numpy as np

from partui.kernels.lab import mountain as kernels
from partui.profiles.lab.experiments.common import (
    CPU_TIME_NOTE,
    F32,
    KiB,
    MiB,
    cache_markers,
    calibrated,
    filled,
    share_note,
    size_text,
    ys,
)
from partui.profiles.lab.measure import Lab, MemPoint, split_calls

MOUNTAIN_SERIES = {
    "read (native)": "read",
    "read-modify-write (native)": "rmw",
    "read (numpy a.sum())": "numpy",
}
STEP_DROP = 1.15  # a step: bandwidth falls by at least 15% between neighbouring sizes


def plan(quick: bool) -> dict:
    if quick:
        sizes = [8 * KiB << i for i in range(14)]  # 8 KiB .. 64 MiB
    else:
        sizes = []
        s = 8 * KiB
        while s <= 512 * MiB:
            sizes += [s, s * 3 // 2]
            s *= 2
        sizes = [x for x in sizes if x <= 512 * MiB]
    return {
        "sizes": sizes,
        "repeats": 3 if quick else 5,
        "target_s": 0.01 if quick else 0.02,
        "chunk_bytes": 32 * MiB,
    }


def need(p: dict) -> int:
    return max(p["sizes"])


def run(lab: Lab, p: dict) -> dict:
    buf = filled(lab, max(p["sizes"]) // F32, 1.0)
    kern = kernels.native()
    funcs = {"read": kern.read_sum, "rmw": kern.read_modify_write, "numpy": kernels.numpy_read_sum}
    chunk = p["chunk_bytes"]
    for size in p["sizes"]:
        a = buf[: size // F32]

        def jobs(kind: str, passes: int) -> list:
            fn = funcs[kind]
            if size <= chunk:
                return [[partial(fn, a, c) for c in split_calls(passes, chunk // size)]]
            pieces = [a[i : i + chunk // F32] for i in range(0, a.size, chunk // F32)]
            return [[partial(fn, piece, 1) for _ in range(passes) for piece in pieces]]

        passes = {}
        for kind in MOUNTAIN_SERIES.values():
            units0 = max(1, (4 * MiB if kind == "numpy" else 32 * MiB) // size)
            passes[kind] = calibrated(lab, partial(jobs, kind), units0, p["target_s"])
        samples = lab.interleaved(
            {s: jobs(k, passes[k]) for s, k in MOUNTAIN_SERIES.items()}, p["repeats"]
        )
        for series, kind in MOUNTAIN_SERIES.items():
            moved = size * passes[kind]
            lab.add(
                series,
                size,
                "working set (bytes)",
                "GB/s",
                *ys(samples[series], lambda smp: moved / smp.cpu_ns),
            )
    return summarize(lab.points, lab.machine)


def _regions(machine: dict) -> list[tuple[str, float, float]]:
    """Size ranges safely inside each level: [2 x previous level, level / 2]."""
    out: list[tuple[str, float, float]] = []
    lo = 0.0
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
                steps.append(
                    {"from_size": a.x, "to_size": b.x, "from_gbs": a.median, "to_gbs": b.median}
                )
    return steps


def summarize(points: list[MemPoint], machine: dict) -> dict:
    regions: dict[str, dict[str, float | None]] = {}
    for series in MOUNTAIN_SERIES:
        pts = [p for p in points if p.series == series]
        regions[series] = {}
        for name, lo, hi in _regions(machine):
            inside = [p.median for p in pts if lo <= p.x <= hi]
            regions[series][name] = float(np.median(inside)) if inside else None
    steps: dict[str, list] = {}
    for series in ("read (native)", "read-modify-write (native)"):
        steps[series] = find_steps([p for p in points if p.series == series])
        for step in steps[series]:
            step["cache"] = _cache_at(step, machine)
    smallest = None
    read_pts = {p.x: p for p in points if p.series == "read (native)"}
    numpy_pts = {p.x: p for p in points if p.series == "read (numpy a.sum())"}
    if read_pts and numpy_pts:
        size = min(set(read_pts) & set(numpy_pts))
        smallest = {
            "size": size,
            "numpy_gbs": numpy_pts[size].median,
            "numpy_us": size / numpy_pts[size].median / 1e3,
            "native_us": size / read_pts[size].median / 1e3,
        }
    return {
        "caches": {f"L{k}": machine.get(f"l{k}") for k in (1, 2, 3)},
        "gbs_by_level": regions,
        "steps": steps,
        "smallest": smallest,
        "largest_size": max((p.x for p in points), default=None),
    }


def _cache_at(step: dict, machine: dict) -> str | None:
    """The cache level whose end falls within a step (from half its first size to twice its
    last), or None when the step is not at a cache boundary."""
    for k in (1, 2, 3):
        size = machine.get(f"l{k}")
        if size and step["from_size"] / 2 <= size <= 2 * step["to_size"]:
            return f"L{k}"
    return None


def explain(summary: dict, lab: Lab) -> str:
    caches = summary["caches"]
    levels = summary["gbs_by_level"]
    read, rmw, npy = (levels.get(s, {}) for s in MOUNTAIN_SERIES)
    lines = [
        "Bandwidth while sweeping a working set again and again: small sets stay in a fast "
        "cache, larger ones spill to the next level, so the curve falls in steps where the "
        f"caches end (sysfs: L1 {size_text(caches['L1'])}, L2 {size_text(caches['L2'])}, "
        f"L3 {size_text(caches['L3'])}; marked on the chart).",
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
            lines.append(
                f"No step in {kind} stood out of the noise (a fall of "
                f"{STEP_DROP - 1:.0%} or more with spreads apart)."
            )
            continue
        lines.append(
            f"Steps found in {kind}: "
            + "; ".join(
                f"{size_text(s['from_size'])} -> {size_text(s['to_size'])}: {s['from_gbs']:.0f} -> "
                f"{s['to_gbs']:.0f} GB/s "
                f"({'end of ' + s['cache'] if s['cache'] else 'at no cache boundary'})"
                for s in steps
            )
            + "."
        )
    found = {st["cache"] for steps in summary["steps"].values() for st in steps}
    read_steps = {st["cache"] for st in summary["steps"].get("read (native)", [])}
    if "L1" in found and "L1" not in read_steps:
        lines.append(
            "Reading alone shows no L1 step: this loop reads about as fast from L2 as "
            "from L1. Read-modify-write, which also writes every line back, shows it."
        )
    l3 = caches.get("L3")
    l3_steps = [st for steps in summary["steps"].values() for st in steps if st["cache"] == "L3"]
    if l3 and l3_steps and min(st["to_size"] for st in l3_steps) < l3:
        lines.append(
            f"The fall to main memory comes before the L3 size from sysfs "
            f"({size_text(l3)}): the L3 is shared by every core of the host, so one "
            f"program probably gets only part of it."
        )
    elif (
        l3
        and summary.get("largest_size")
        and summary["largest_size"] < 2 * l3
        and "L3" not in found
    ):
        lines.append(
            f"The largest working set ({size_text(summary['largest_size'])}) is not well "
            "beyond L3, so the step to main memory is not, or only partly, seen."
        )
    if rmw.get("L1") and read.get("L1"):
        lines.append(
            f"Read-modify-write moves each byte in and out: {rmw['L1']:.0f} GB/s in L1 "
            "(array bytes per second)."
        )
    small = summary.get("smallest")
    if small:
        lines.append(
            f"numpy's a.sum() reaches only {small['numpy_gbs']:.0f} GB/s on "
            f"{size_text(small['size'])}: a call takes {small['numpy_us']:.2f} us where the native "
            f"loop needs {small['native_us']:.2f} us for the same bytes. The per-call overhead "
            f"dominates every L1-sized set and hides the L1 step."
        )
    lines.append(CPU_TIME_NOTE)
    return "\n".join(lines) + share_note(lab.points, "the sweeping thread", cpu_timed=True)


def markers(lab: Lab, summary: dict) -> list:
    return cache_markers(lab.machine)
