"""Cyclic against block partition of an array update, native and numpy, 1 and N threads."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from partui.kernels.lab import partition as kernels
from partui.profiles.lab.experiments.common import (
    F32,
    GOOD_SHARE,
    RETAKE_BELOW,
    KiB,
    MiB,
    cache_markers,
    calibrated,
    filled,
    retake_note,
    share_note,
    size_text,
    ys,
)
from partui.profiles.lab.measure import Lab, compare, split_calls

PARTITION_SERIES = {
    "native cyclic": ("native", "cyclic"),
    "native block": ("native", "block"),
    "native 1 thread": ("native", "one"),
    "numpy cyclic": ("numpy", "cyclic"),
    "numpy block": ("numpy", "block"),
    "numpy 1 thread": ("numpy", "one"),
}


def plan(quick: bool, cores: int = 2) -> dict:
    sizes = (
        [16 * KiB, 256 * KiB, 4 * MiB, 32 * MiB]
        if quick
        else [16 * KiB, 128 * KiB, 1 * MiB, 8 * MiB, 64 * MiB, 384 * MiB]
    )
    # short samples: on a shared machine a short one more often finds both cores free
    return {
        "sizes": sizes,
        "threads": max(2, cores),
        "repeats": 3 if quick else 5,
        "target_s": 0.01 if quick else 0.015,
        "chunk_elements": {"native": 4_000_000, "numpy": 1_000_000},
    }


def need(p: dict) -> int:
    return max(p["sizes"])


def partition_jobs(
    a: np.ndarray, impl: str, layout: str, threads: int, passes: int, chunk: int, kern=None
) -> list:
    """The work of `passes` passes as thread jobs; layout 'one' is all of it on one thread."""
    length = a.size
    make = kernels.block_sweeps if layout == "block" else kernels.cyclic_sweeps
    per_worker = [make(length, k, threads) for k in range(threads)]
    elements = kernels.sweep_elements(per_worker[0], threads)
    if impl == "numpy" and layout != "block":
        # as many numpy calls per pass as block's sweeps: the same per-call overhead
        per_worker = [
            kernels.split_sweeps(sw, threads, -(-elements // threads)) for sw in per_worker
        ]

    def chunks(sweeps) -> list:
        if elements > chunk:  # long passes: each pass in pieces, in the same order
            pieces = kernels.split_sweeps(sweeps, threads, chunk)
            return [
                _sweep_call(a, [pc], threads, 1, impl, kern) for _ in range(passes) for pc in pieces
            ]
        return [
            _sweep_call(a, sweeps, threads, n, impl, kern)
            for n in split_calls(passes, chunk // max(1, elements))
        ]

    jobs = [chunks(sw) for sw in per_worker]
    return [[c for job in jobs for c in job]] if layout == "one" else jobs


def _sweep_call(a, sweeps, step, passes, impl, kern):
    if impl == "numpy":
        return partial(kernels.numpy_add_one, kernels.numpy_views(a, sweeps, step), passes)
    starts = np.array([s for s, _ in sweeps], np.int64)
    stops = np.array([e for _, e in sweeps], np.int64)
    return partial(kern.add_one, a, starts, stops, step, passes)


def run(lab: Lab, p: dict) -> dict:
    kern = kernels.native()
    threads = p["threads"]
    buf = filled(lab, max(p["sizes"]) // F32, 0.0)
    summary: dict[str, Any] = {"threads": threads, "sizes": {}}
    for size in p["sizes"]:
        a = buf[: size // F32]
        a[...] = 0.0
        passes, ok = {}, True
        for impl in ("native", "numpy"):
            chunk = p["chunk_elements"][impl]
            units0 = max(1, (4_000_000 if impl == "native" else 400_000) // a.size)

            def one_layout(n: int, impl: str = impl, chunk: int = chunk) -> list:
                return partition_jobs(a, impl, "one", threads, n, chunk, kern)

            passes[impl] = calibrated(
                lab,
                one_layout,
                units0,
                p["target_s"],
            )
        for impl, layout in PARTITION_SERIES.values():  # untimed, checks the sums
            a[...] = 0.0
            lab.sample(partition_jobs(a, impl, layout, threads, 1, p["chunk_elements"][impl], kern))
            ok &= bool((a == 1.0).all())
        group = {
            s: partition_jobs(
                a, impl, layout, threads, passes[impl], p["chunk_elements"][impl], kern
            )
            for s, (impl, layout) in PARTITION_SERIES.items()
        }
        samples = lab.interleaved(
            group,
            p["repeats"],
            min_share={
                s: RETAKE_BELOW for s, (impl, _) in PARTITION_SERIES.items() if impl == "native"
            },
        )
        pts = {}
        for series, (impl, _layout) in PARTITION_SERIES.items():
            updates = a.size * passes[impl]
            pts[series] = lab.add(
                series,
                size,
                "array size (bytes)",
                "ns per element update",
                *ys(samples[series], lambda smp: smp.wall_ns / updates),
            )
        d: dict[str, Any] = {"updates_ok": ok}
        for impl in ("native", "numpy"):
            d[f"{impl}_cyclic_over_block"] = compare(
                pts[f"{impl} cyclic"], pts[f"{impl} block"]
            ).to_dict()
            d[f"{impl}_block_over_one_thread"] = compare(
                pts[f"{impl} block"], pts[f"{impl} 1 thread"]
            ).to_dict()
            d[f"{impl}_cyclic_over_one_thread"] = compare(
                pts[f"{impl} cyclic"], pts[f"{impl} 1 thread"]
            ).to_dict()
            shares = (pts[f"{impl} block"].cpu_share, pts[f"{impl} cyclic"].cpu_share)
            d[f"{impl}_cpu_share"] = min((s for s in shares if s is not None), default=None)
        summary["sizes"][str(size)] = d
    summary.update(lab.counts())
    return summary


def explain(summary: dict, lab: Lab) -> str:
    t = summary["threads"]
    lines = [
        f"{t} threads add 1 to every element of an array. Cyclic: thread k updates a[k::{t}] "
        f"(every {_nth(t)} element, like the cook who makes every {_nth(t)} sandwich), so every "
        f"cache line is written by all threads. Block: each thread owns one part and updates it "
        f"with the same stride, in {t} sweeps: the same work, the same stride, the same lines per "
        f"thread, but no line shared. '1 thread' does all of it alone (the baseline).",
    ]
    for size, d in summary["sizes"].items():
        cells = [f"{size_text(int(size))}:"]
        for impl in ("native", "numpy"):
            if impl == "native" and d["native_cpu_share"] < GOOD_SHARE:
                cells.append(
                    f"native: the threads seldom ran at the same time (each ran "
                    f"{100 * d['native_cpu_share']:.0f}% of the time: another program "
                    f"held a core), no verdict;"
                )
                continue
            cells.append(
                f"{impl}: cyclic vs block {d[f'{impl}_cyclic_over_block']['text']}, "
                f"{t} threads (block) vs 1 thread "
                f"{d[f'{impl}_block_over_one_thread']['text']};"
            )
        if not d["updates_ok"]:
            cells.append("UPDATES WRONG;")
        lines.append(" ".join(cells)[:-1] + ".")

    def slower(d: dict, key: str) -> bool:
        return d[key]["separated"] and d[key]["ratio"] > 1

    sizes = summary["sizes"]
    shared = [
        sz
        for sz, d in sizes.items()
        if d["native_cpu_share"] >= GOOD_SHARE and slower(d, "native_cyclic_over_block")
    ]
    if shared:
        lines.append(
            "Native cyclic is slower than block at "
            + ", ".join(
                f"{size_text(int(sz))} ({sizes[sz]['native_cyclic_over_block']['text']})"
                for sz in shared
            )
            + ": false sharing. Both threads write into every line, so each line keeps moving "
            "between the cores. Beyond the caches both layouts wait on main memory, which "
            "narrows the gap."
        )
    elif any(d["native_cpu_share"] >= GOOD_SHARE for d in sizes.values()):
        lines.append("Native cyclic was not clearly slower than block in this run.")
    slow_numpy = [sz for sz, d in sizes.items() if slower(d, "numpy_block_over_one_thread")]
    if slow_numpy:
        d = sizes[slow_numpy[0]]
        lines.append(
            f"numpy with {t} threads is SLOWER than one thread at "
            + ", ".join(size_text(int(sz)) for sz in slow_numpy)
            + f" ({d['numpy_block_over_one_thread']['text']} at {size_text(int(slow_numpy[0]))}, "
            f"each thread running {100 * d['numpy_cpu_share']:.0f}% of the time): each "
            "`a[k::n] += 1` on a small slice is mostly Python and numpy call overhead, done "
            "while holding the GIL, so the threads take turns and pay for every hand-off. "
            "That is a GIL effect, not a cache effect."
        )
    return (
        "\n".join(lines)
        + retake_note(summary)
        + share_note(
            [q for q in lab.points if q.series.startswith("native") and "1 thread" not in q.series],
            "the native threads",
        )
    )


def _nth(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def markers(lab: Lab, summary: dict) -> list:
    return cache_markers(lab.machine)
