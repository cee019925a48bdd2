"""The stride experiment: time per touched float against the stride of the reads."""

from __future__ import annotations

from functools import partial
from typing import Any

from partui.kernels.lab import stride as kernels
from partui.profiles.lab.experiments.common import (
    CPU_TIME_NOTE,
    F32,
    MiB,
    filled,
    share_note,
    size_text,
    ys,
)
from partui.profiles.lab.measure import Lab, MemPoint, compare

STRIDE_SERIES = "strided read (native)"
KNEE_TOLERANCE = 0.15  # the knee: the first stride within 15% of the highest cost from there on


def plan(quick: bool) -> dict:
    strides = (
        [1, 2, 4, 8, 12, 16, 24, 28, 32, 40, 48, 64]
        if quick
        else [1, 2, 3, 4, 6, 8, 12, 16, 20, 24, 28, 32, 36, 40, 48, 56, 64]
    )
    return {
        "array_bytes": 384 * MiB,
        "strides": strides,
        "repeats": 3 if quick else 5,
        "chunk_bytes": 16 * MiB,
    }


def need(p: dict) -> int:
    return p["array_bytes"]


def find_knee(points: list[MemPoint], tolerance: float = KNEE_TOLERANCE) -> float | None:
    """The first stride whose cost is within `tolerance` of the highest cost at or after it:
    where the cost per touched element stops rising."""
    pts = sorted(points, key=lambda p: p.x)
    for i, p in enumerate(pts):
        if p.median >= (1 - tolerance) * max(q.median for q in pts[i:]):
            return p.x
    return None


def run(lab: Lab, p: dict) -> dict:
    n = p["array_bytes"] // F32
    a = filled(lab, n, 1.0)  # every page touched before timing
    kern = kernels.native()
    piece = max(64, p["chunk_bytes"] // F32)

    def jobs(s: int) -> list:
        chunks = []
        for lo in range(0, n, piece):
            start = -(-lo // s) * s  # the first multiple of s in this piece
            chunks.append(partial(kern.strided_sum, a[start : lo + piece], s))
        return [chunks]

    lab.sample(jobs(1))  # untimed: compiles, maps the pages into the TLB once
    for s in p["strides"]:
        touched = len(range(0, n, s))
        samples = [lab.sample(jobs(s)) for _ in range(p["repeats"])]
        lab.add(
            STRIDE_SERIES,
            s,
            "stride (floats)",
            "ns per touched float",
            *ys(samples, lambda smp: smp.cpu_ns / touched),
        )
    return summarize(
        [q for q in lab.points if q.series == STRIDE_SERIES],
        lab.machine.get("line") or 64,
        p["array_bytes"],
        lab.machine.get("l3"),
    )


def summarize(pts: list[MemPoint], line: int, array_bytes: int, l3: int | None) -> dict:
    """The knee over the strides that are not multiples of two lines, and how much more the
    multiples of two lines (128 B) cost than the other strides past one line."""
    lf = line // F32
    pair = 2 * lf
    regular = [q for q in pts if q.x % pair]
    multiples = [q for q in pts if q.x % pair == 0]
    by_x = {q.x: q for q in pts}
    summary: dict[str, Any] = {
        "array_bytes": array_bytes,
        "l3_bytes": l3,
        "line_bytes": line,
        "line_floats": lf,
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
        pooled = MemPoint.of(
            "stride",
            "other strides past the knee",
            0,
            "",
            "",
            [v for q in beyond for v in q.samples],
        )
        worst = max(multiples, key=lambda q: q.median)
        summary["pair_multiples"] = {
            "strides": [int(q.x) for q in multiples],
            "over_others": {int(q.x): compare(q, pooled).to_dict() for q in multiples},
            "others_median_ns": pooled.median,
            "worst_stride": int(worst.x),
        }
    return summary


def explain(summary: dict, lab: Lab) -> str:
    lf, knee, line = summary["line_floats"], summary["knee_stride"], summary["line_bytes"]
    cost = summary["cost_ns"]
    lines = [
        f"Reading every s-th float of a {size_text(summary['array_bytes'])} array (this machine's "
        f"last-level cache: {size_text(summary['l3_bytes'])}). Memory moves whole cache lines of "
        f"{line} B = {lf} floats, so up to stride {lf} a line fetched serves several reads and "
        f"the cost per read rises with the stride.",
    ]
    if 1 in cost and lf in cost:
        lines.append(
            f"Measured: {cost[1]:.2f} ns per float at stride 1, {cost[lf]:.2f} ns at "
            f"stride {lf} (one read per line)."
        )
    rise = summary.get("knee_over_line")
    if knee is not None and knee > lf and rise and rise["separated"]:
        lines.append(
            f"The cost keeps rising past one line and stops at stride {knee:g} "
            f"({rise['text']} than at stride {lf}; {summary['knee_rule']}). That is "
            f"consistent with the adjacent-line prefetcher, which completes every line "
            f"fetched into its {2 * line}-byte pair: until the stride nears two lines, "
            f"neighbouring reads still share some of those pairs."
        )
    elif knee is not None:
        lines.append(f"The cost stops rising at stride {knee:g} ({summary['knee_rule']}).")
    pm = summary.get("pair_multiples")
    if pm:
        worse = {s: c for s, c in pm["over_others"].items() if c["separated"] and c["ratio"] > 1}
        if worse:
            lines.append(
                "Strides that are a multiple of "
                + f"{2 * line} B ("
                + ", ".join(f"{s}" for s in worse)
                + " floats) cost more than the other long "
                f"strides (median {pm['others_median_ns']:.2f} ns): "
                + ", ".join(f"{s}: {c['text']}" for s, c in worse.items())
                + f". With them every read falls at the same place of a {2 * line}-byte pair; "
                "the hardware counters that would show which prefetcher or memory channel "
                "causes it are not available here, so a curve sampled only at powers of two "
                "shows a rise up to 32 that is partly this effect."
            )
        else:
            lines.append(f"Multiples of {2 * line} B cost no more than the other long strides.")
    lines.append(
        "The array is as large as the memory-lab limit allows; a part of it may still "
        "be served from the last-level cache."
    )
    lines.append(CPU_TIME_NOTE)
    return "\n".join(lines) + share_note(lab.points, "the reading thread", cpu_timed=True)


def markers(lab: Lab, summary: dict) -> list:
    line = lab.machine.get("line") or 64
    out = [(line / F32, f"cache line {line} B")]
    if summary.get("knee_stride"):
        out.append((summary["knee_stride"], "cost stops rising"))
    return out
