"""What a training epoch's steps measured beyond loss and speed: the staleness of Hogwild!'s
gradients and its overlapping writes (from the version stamps, kernels.grad.stamps), and
each worker's phases of a step (compute, wait for the others, combine, update) with the
straggler gap.
"""

from __future__ import annotations

import numpy as np

from partui.kernels.plan.pass_axes import BACKWARD, COMBINE, FORWARD, UPDATE

PHASES = ("compute", "wait", "combine", "update")
RECENT_STEPS = 8  # steps whose per-worker phases an epoch keeps for the train tab's bars
SYNC_STALENESS = "0 by construction: one update per step, made after every gradient is in"
HOGWILD_WAIT = "0 by construction: no barrier, a worker never waits for another"


def histogram_counts(values) -> dict[int, int]:
    """Staleness value -> how many block writes had it."""
    vals, counts = np.unique(np.asarray(values, np.int64), return_counts=True)
    return {int(v): int(c) for v, c in zip(vals, counts, strict=True)}


def nearest_rank(counts: dict[int, int], q: float) -> int:
    """The q-quantile of the values a histogram counts (nearest rank: the smallest value at
    or above which a share q of them lies)."""
    total = sum(counts.values())
    need = max(1, int(np.ceil(q * total)))
    seen = 0
    for v in sorted(counts):
        seen += counts[v]
        if seen >= need:
            return v
    return max(counts)


def staleness_summary(counts: dict[int, int]) -> dict:
    """median, p95, max and the histogram ([[staleness, block writes], ...]) of measured
    stamps; `updates` is the number of block writes counted."""
    if not counts:
        return {"median": None, "p95": None, "max": None, "histogram": [], "updates": 0}
    return {
        "median": nearest_rank(counts, 0.5),
        "p95": nearest_rank(counts, 0.95),
        "max": max(counts),
        "histogram": [[v, counts[v]] for v in sorted(counts)],
        "updates": sum(counts.values()),
        "measured": True,
    }


def sync_staleness() -> dict:
    return {
        "median": 0,
        "p95": 0,
        "max": 0,
        "histogram": None,
        "updates": None,
        "measured": False,
        "note": SYNC_STALENESS,
    }


def merged_counts(summaries) -> dict[int, int]:
    """The histograms of several measured summaries added up (a run from its epochs)."""
    out: dict[int, int] = {}
    for s in summaries:
        for v, c in (s or {}).get("histogram") or []:
            out[int(v)] = out.get(int(v), 0) + int(c)
    return out


def epoch_staleness(staleness: np.ndarray, overlaps: np.ndarray, done) -> tuple[dict, int]:
    """The stamps of the steps `done` (rows of staleness (steps, blocks) and overlaps)."""
    rows = staleness[done]
    rows = rows[np.isfinite(rows).all(axis=1)] if rows.ndim == 2 else rows
    over = overlaps[done]
    return staleness_summary(histogram_counts(rows.ravel())), int(np.nansum(over))


def _per_worker_step(spans) -> dict[int, dict[str, float]]:
    """One step's spans -> worker -> ms of compute, combine, update, and its first start and
    last end (ns)."""
    out: dict[int, dict[str, float]] = {}
    for s in spans:
        w = out.setdefault(
            s.worker,
            {"compute": 0.0, "combine": 0.0, "update": 0.0, "t0": s.start_ns, "t1": s.end_ns},
        )
        ms = s.duration_ns / 1e6
        if s.phase in (FORWARD, BACKWARD):
            w["compute"] += ms
        elif s.phase == COMBINE:
            w["combine"] += ms
        elif s.phase == UPDATE:
            w["update"] += ms
        w["t0"] = min(w["t0"], s.start_ns)
        w["t1"] = max(w["t1"], s.end_ns)
    return out


def step_phases(spans, workers: int, barrier: bool) -> dict:
    """Each worker's median ms per phase over the steps of `spans` (repeat = step), the
    straggler gap (the slowest worker's compute minus the fastest's, per step) and each
    worker's phases in its last RECENT_STEPS steps.

    `barrier`: the workers of a step wait for each other (sync); a worker's wait is then the
    step's span (first start to last end over all workers) less its own busy time. Hogwild!
    has no barrier: each step is one worker's, its wait 0 by construction.
    """
    by_step: dict[int, list] = {}
    for s in spans:
        by_step.setdefault(s.repeat, []).append(s)
    per: dict[int, dict[str, list[float]]] = {w: {p: [] for p in PHASES} for w in range(workers)}
    gaps: list[float] = []
    for step in sorted(by_step):
        ws = _per_worker_step(by_step[step])
        t0 = min(w["t0"] for w in ws.values())
        t1 = max(w["t1"] for w in ws.values())
        for w, m in ws.items():
            busy = m["compute"] + m["combine"] + m["update"]
            m["wait"] = max(0.0, (t1 - t0) / 1e6 - busy) if barrier else 0.0
            if 0 <= w < workers:
                for p in PHASES:
                    per[w][p].append(m[p])
        if barrier and len(ws) > 1:
            computes = [m["compute"] for m in ws.values()]
            gaps.append(max(computes) - min(computes))
    out_workers = [
        {
            "worker": w,
            "steps": len(per[w]["compute"]),
            **{f"{p}_ms": float(np.median(per[w][p])) if per[w][p] else None for p in PHASES},
        }
        for w in range(workers)
    ]
    return {
        "workers": out_workers,
        "steps": len(by_step),
        "straggler_gap_ms": (
            {"median": float(np.median(gaps)), "max": float(max(gaps))} if gaps else None
        ),
        "wait_note": None if barrier else HOGWILD_WAIT,
        # per worker, its last steps: [compute, wait, combine, update] ms each
        "recent": [
            [
                [per[w][p][i] for p in PHASES]
                for i in range(-min(RECENT_STEPS, len(per[w]["compute"])), 0)
            ]
            for w in range(workers)
        ],
    }
