"""The bench's targets for a 2-core machine, each read against a finished bench, with the
figure that decides it.

A verdict is one of: met (the figure passes and the machine was quiet), not met, unconfirmed
(the figure passes but other programs were busy: a busy machine can flatter a figure as
well as spoil it, when the peak it is read against was lowered), or not measurable (its
peak could not be measured now). A ratio of two configurations is the median of the
interleaved rounds' ratios, so both sides of each ratio shared one round's conditions.
"""

from __future__ import annotations

import statistics

from partui.profiles.records.bench_result import BenchResult, BenchRow
from partui.profiles.records.significance import SLOWER

TARGETS = {
    "overhead_us_2": 20.0,  # one repeat of empty tasks on threads, 2 workers
    "fixed_us_2": 30.0,  # a real repeat's fixed cost, 2 workers, on the fastest executor
    "network_ms_1": 12.0,
    "network_ms_2": 9.0,
    "peak_rss_bytes": 1 << 30,
}
# best 1 worker's share of the 1-thread GEMM peak, at batch 64
SHARE_TARGETS = {"conv2": 0.75, "network": 0.70}
# best 2 workers / best 1 worker, by batch and layer
SPEEDUP_TARGETS = {
    64: {"conv2": 1.8, "conv3": 1.8, "network": 1.85},
    16: {"conv2": 1.5, "conv3": 1.5, "network": 1.5},
}


def row_of(rows: list[BenchRow], layer: str, workers: int) -> BenchRow | None:
    for row in rows:
        if row.layer == layer and row.workers == workers:
            return row
    return None


def fastest_split(splits: list[dict], layer: str, workers: int) -> dict | None:
    """Of the bench's executor splits for `layer` on `workers`, the fastest one's."""
    mine = [x for x in splits if x.get("layer") == layer and x.get("workers") == workers]
    return min(mine, key=lambda x: x["median_ms"]) if mine else None


MET, NOT_MET, UNCONFIRMED, NOT_MEASURABLE = "met", "NOT MET", "unconfirmed", "not measurable"


def verdict(passed: bool | None, quiet: bool) -> str:
    """passed None: the figure could not be measured."""
    if passed is None:
        return NOT_MEASURABLE
    if not passed:
        return NOT_MET
    return MET if quiet else UNCONFIRMED


def round_ratio(r1: BenchRow, r2: BenchRow) -> tuple[float, float, float, int]:
    """r1 / r2 as the median of their interleaved rounds' ratios (with min, max and the
    rounds); the ratio of their medians when they do not share rounds."""
    a, b = r1.round_medians_ms, r2.round_medians_ms
    if a and len(a) == len(b) and all(v > 0 for v in b):
        ratios = [x / y for x, y in zip(a, b)]
        return statistics.median(ratios), min(ratios), max(ratios), len(ratios)
    ratio = r1.median_ms / r2.median_ms
    return ratio, ratio, ratio, 1


def targets(result: BenchResult) -> list[dict]:
    """The targets for a 2-core machine, each with its figure and its verdict (`met` is True
    only for the verdict "met": a passing figure in a quiet run)."""
    out: list[dict] = []
    layers, network = result.layers, result.network
    quiet = bool(result.conditions.get("quiet", False))

    def add(name, passed, figure):
        v = verdict(passed, quiet)
        out.append({"target": name, "met": v == MET, "verdict": v, "figure": figure})

    for name, goal in SHARE_TARGETS.items():
        r1 = row_of(network if name == "network" else layers, name, 1)
        if r1 is None or result.batch != 64:
            continue
        share = r1.share_of_gemm_peak
        title = f"{name} 1 worker >= {100 * goal:.0f}% of the 1-thread GEMM peak"
        if share is None:
            add(title, None, f"{r1.gflops:.1f} GFLOP/s; {result.peak_problem(1)}")
        else:
            add(
                title,
                share >= goal,
                f"{r1.gflops:.1f} GFLOP/s = {100 * share:.0f}% of "
                f"{result.gemm_peak_gflops.get('1', 0):.0f}",
            )
    for name, goal in SPEEDUP_TARGETS.get(result.batch, {}).items():
        rows = network if name == "network" else layers
        r1, r2 = row_of(rows, name, 1), row_of(rows, name, 2)
        if r1 and r2:
            ratio, lo, hi, rounds = round_ratio(r1, r2)
            said = f" ({r2.vs_1_worker['text']})" if r2.vs_1_worker else ""
            add(
                f"{name} batch {result.batch}: best 2 workers >= {goal:g}x faster than best "
                "1 worker",
                ratio >= goal,
                f"{r1.median_ms:.3f} / {r2.median_ms:.3f} ms; median of {rounds} round "
                f"ratio(s) {ratio:.2f}x ({lo:.2f}-{hi:.2f}){said}",
            )
    o2 = result.overhead.get("2")
    if o2:
        add(
            f"fixed cost of a repeat of empty tasks, 2 workers on threads <= "
            f"{TARGETS['overhead_us_2']:g} us",
            o2["median_us"] <= TARGETS["overhead_us_2"],
            f"{o2['median_us']:.1f} us (q1-q3 {o2['q1_us']:.1f}-{o2['q3_us']:.1f}, "
            f"{o2['repeats']:.0f} repeats of empty tasks)",
        )
    for name in ("conv2", "network"):
        split = fastest_split(result.executor_splits, name, 2)
        if split is not None and split.get("fixed_us") is not None:
            add(
                f"{name}: fixed cost of a real 2-worker repeat <= {TARGETS['fixed_us_2']:g} us "
                "on the fastest executor",
                split["fixed_us"] <= TARGETS["fixed_us_2"],
                f"{split['fixed_us']:.1f} us on {split['strategy']}/{split['executor']} "
                f"({split['median_ms']:.3f} ms a repeat; wall minus the busiest worker)",
            )
    for w, limit in ((1, TARGETS["network_ms_1"]), (2, TARGETS["network_ms_2"])):
        r = row_of(network, "network", w)
        if r:
            add(
                f"network forward, {w} worker{'s' * (w > 1)} <= {limit:g} ms",
                r.median_ms <= limit,
                f"{r.median_ms:.2f} ms",
            )
    slower = []
    for name in {r.layer for r in layers} | ({"network"} if network else set()):
        rows = network if name == "network" else layers
        r1, r2 = row_of(rows, name, 1), row_of(rows, name, 2)
        if r1 and r2 and _slower(r1, r2):
            said = f": {r2.vs_1_worker['text']}" if r2.vs_1_worker else ""
            slower.append(f"{name} {r2.median_ms:.3f} > {r1.median_ms:.3f} ms{said}")
    singles = sorted(r.layer for r in layers + network if r.workers == 2 and r.single_task)
    add(
        "no layer significantly slower with 2 workers than with 1",
        not slower,
        "; ".join(slower) if slower else f"single task best for {', '.join(singles) or 'none'}",
    )
    rss = result.peak_rss_bytes
    if rss:
        add(
            "peak RSS <= 1 GB (main + every worker process)",
            rss["bound"] <= TARGETS["peak_rss_bytes"],
            f"{rss['bound'] / 2**20:.0f} MiB (main {rss['main'] / 2**20:.0f}, largest worker "
            f"{rss['largest_child'] / 2**20:.0f} MiB)",
        )
    return out


def _slower(r1: BenchRow, r2: BenchRow) -> bool:
    """r2 slower than r1: by the test of their repeats (significance.contrast), or, for an
    older summary without it, by the medians."""
    if r2.vs_1_worker is not None:
        return r2.vs_1_worker["verdict"] == SLOWER
    return r2.median_ms > r1.median_ms
