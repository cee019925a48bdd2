"""Instruction-level parallelism: one sum in 1..16 independent chains of additions."""

from __future__ import annotations

import math
from functools import partial

import numpy as np

from partui.kernels.lab import asm
from partui.kernels.lab import ilp as kernels
from partui.profiles.lab.experiments.common import (
    CPU_TIME_NOTE,
    KiB,
    calibrated,
    share_note,
    size_text,
    ys,
)
from partui.profiles.lab.measure import Lab, compare, split_calls
from partui.profiles.system import machine as machine_info

ILP_SERIES = "sum in k chains (native)"
F64 = 8
PLATEAU = 1.10  # the plateau: the first chain count within 10% of the fastest


def plan(quick: bool) -> dict:
    l1 = machine_info.cache_size(1) or 32 * KiB
    # half of the L1 data cache: every load hits L1, so only the additions set the pace
    elements = max(256, l1 // 2 // F64) // 16 * 16
    return {
        "chains": list(kernels.CHAINS),
        "elements": elements,
        "repeats": 5 if quick else 9,
        "target_s": 0.01 if quick else 0.03,
    }


def need(p: dict) -> int:
    return p["elements"] * F64


def check_code(fn, k: int) -> dict:
    """What the compiled loop really does: its widest vector arithmetic (0: scalar only) and
    how many registers its scalar additions accumulate into (one per chain)."""
    code = asm.asm_of(fn)
    bodies = asm.loop_bodies(code)
    targets = max((len(asm.scalar_add_targets(b)) for b in bodies), default=0)
    packed = asm.packed_width(asm.first_function(code))
    return {"accumulators": targets, "packed_bits": packed, "ok": targets == k and packed == 0}


def run(lab: Lab, p: dict) -> dict:
    kern = kernels.native()
    n = p["elements"]
    a = np.random.default_rng(0).random(n)
    exact = math.fsum(a.tolist())
    sums_ok, code = True, {}
    for k in p["chains"]:  # untimed: compiles, checks the sum and the machine code
        lab.check()
        sums_ok &= math.isclose(kern[k](a, 1), exact, rel_tol=1e-12)
        code[str(k)] = check_code(kern[k], k)

    def jobs(k: int, passes: int) -> list:
        # calls of ~0.5M additions: short enough to see a cancel, long enough to time
        return [[partial(kern[k], a, c) for c in split_calls(passes, max(1, 500_000 // n))]]

    passes = {
        k: calibrated(lab, partial(jobs, k), max(1, 200_000 // n), p["target_s"])
        for k in p["chains"]
    }
    samples = lab.interleaved({k: jobs(k, passes[k]) for k in p["chains"]}, p["repeats"])
    for k in p["chains"]:
        adds = n * passes[k]
        lab.add(
            ILP_SERIES,
            k,
            "independent chains",
            "ns per element",
            *ys(samples[k], lambda smp: smp.cpu_ns / adds),
        )
    return summarize(lab, p, sums_ok, code)


def summarize(lab: Lab, p: dict, sums_ok: bool, code: dict) -> dict:
    pts = {int(q.x): q for q in lab.points if q.series == ILP_SERIES}
    one = pts[1]
    best = min(pts.values(), key=lambda q: q.median)
    plateau = next(k for k in sorted(pts) if pts[k].median <= PLATEAU * best.median)
    mhz = machine_info.cpu_mhz()
    summary = {
        "elements": p["elements"],
        "array_bytes": p["elements"] * F64,
        "l1_bytes": lab.machine.get("l1"),
        "ns_per_element": {str(k): q.median for k, q in pts.items()},
        "speedup_over_1": {str(k): one.median / q.median for k, q in pts.items()},
        "verdict_over_1": {str(k): compare(q, one).to_dict() for k, q in pts.items() if k != 1},
        "plateau_chains": plateau,
        "latency_ns": one.median,
        "throughput_ns": best.median,
        "adds_in_flight": one.median / best.median,
        "cpu_mhz": mhz,
        "latency_cycles": one.median * mhz / 1000 if mhz else None,
        "throughput_cycles": best.median * mhz / 1000 if mhz else None,
        "sums_ok": sums_ok,
        "code": code,
        "code_ok": all(c["ok"] for c in code.values()),
    }
    if 4 in pts:
        summary["speedup_4_over_1"] = one.median / pts[4].median
    return summary


def explain(summary: dict, lab: Lab) -> str:
    ns, mhz = summary["ns_per_element"], summary["cpu_mhz"]
    cyc = (lambda v: f" = {v * mhz / 1000:.1f} cycles") if mhz else (lambda v: "")
    lat, thr = summary["latency_ns"], summary["throughput_ns"]
    lines = [
        f"Summing a {size_text(summary['array_bytes'])} float64 array (it stays in this "
        f"machine's {size_text(summary['l1_bytes'])} L1 cache) with k accumulators: element i "
        f"goes into accumulator i mod k. Each accumulator is a chain: an addition must wait for "
        f"the previous one into the same accumulator to finish.",
        "Measured (ns per element): "
        + ", ".join(f"{k} chain{'s' * (k != '1')} {v:.3f}" for k, v in ns.items())
        + ".",
        f"One chain: {lat:.3f} ns per addition{cyc(lat)}"
        + (
            f" at the {mhz:.0f} MHz the kernel reports (a boosted core runs faster, so the "
            f"true count may be higher)"
            if mhz
            else ""
        )
        + ": the LATENCY of a floating-point add. The load of the next element does not "
        "depend on the sum, so it runs ahead; the additions wait for each other.",
    ]
    s4 = summary.get("speedup_4_over_1")
    v4 = summary["verdict_over_1"].get("4")
    if s4 is not None and v4 is not None:
        lines.append(
            f"Four chains: {s4:.2f}x the speed of one ({v4['text']} per element): four "
            f"additions are in flight at once in the pipelined adder."
        )
    plateau = summary["plateau_chains"]
    lines.append(
        f"From {plateau} chains on the time stops falling (within {PLATEAU - 1:.0%} of the "
        f"fastest, {thr:.3f} ns{cyc(thr)} per element): the adders' THROUGHPUT (how many "
        f"additions can start per cycle), or the loads feeding them, is the limit now. Latency "
        f"over throughput = {summary['adds_in_flight']:.1f}: about that many additions must be in "
        f"flight to keep the adders busy, which is why the gain stops near there."
    )
    if s4 is not None and s4 < 2:
        shares = [q.cpu_share for q in lab.points if q.cpu_share is not None]
        lines.append(
            f"The gain of 4 chains over 1 is below 2x here ({s4:.2f}x): "
            + (
                f"the measuring thread ran only {100 * min(shares):.0f}% of the time at worst, "
                "so another program shared the core (an SMT sibling shares the adders too). "
                if shares and min(shares) < 0.9
                else "the one-chain loop is already close to the plateau on this CPU, so the adds' "
                "latency is short compared with what else each element costs. "
            )
            + "Run it again on a quieter machine to tell."
        )
    lines.append(
        "The loops were compiled without fastmath, so the compiler may not reassociate the "
        "additions: "
        + (
            "the machine code was checked and keeps exactly k scalar accumulators "
            "per loop, with no vector additions."
            if summary["code_ok"]
            else "BUT the machine code did not keep k scalar chains: "
            + "; ".join(
                f"k={k}: {c['accumulators']} accumulators, vector width {c['packed_bits']} bits"
                for k, c in summary["code"].items()
                if not c["ok"]
            )
        )
    )
    if not summary["sums_ok"]:
        lines.append("SUMS WRONG: a kernel did not give the array's sum.")
    lines.append(CPU_TIME_NOTE)
    return "\n".join(lines) + share_note(lab.points, "the thread", cpu_timed=True)


def markers(lab: Lab, summary: dict) -> list:
    return [(summary["plateau_chains"], "plateau")] if summary.get("plateau_chains") else []
