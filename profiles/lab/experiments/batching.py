"""Throughput against latency: the network forward at batch 1..256 with the best 1-worker and
2-worker configurations (chosen by the engine's own screening), images/s against ms/batch."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any

from partui.kernels.runtime.scratch import Cancelled
from partui.profiles.lab.experiments.common import KiB
from partui.profiles.lab.measure import Lab, MemPoint, compare

LAYER, KERNEL = "network", "vectorized"
SATURATED = 0.9  # throughput "saturates" at the first batch within 10% of the best
WIDE_SPREAD = 2.0  # a point whose max is over twice its min was disturbed
IMAGE_BYTES = 512 * KiB  # activations, patch matrices and the float64 reference, per image


def plan(quick: bool, cores: int = 2) -> dict:
    return {
        "batches": [1, 4, 16, 64] if quick else [1 << i for i in range(9)],
        "workers": [1, 2] if cores >= 2 else [1],
        "screen_batch": 16 if quick else 64,
        "screen_repeats": 2 if quick else 5,
        "rounds": 2 if quick else 3,
        "round_repeats": 2 if quick else 3,
        "warmup": 1,
        # process pools take seconds to start on a busy machine: the quick run skips them
        "executors": ["inline", "threads", "blas"]
        if quick
        else ["inline", "threads", "processes", "blas"],
    }


def need(p: dict) -> int:
    return max(p["batches"]) * IMAGE_BYTES


def candidates(workers: int, batch: int, executors: list[str]) -> list[tuple[str, str]]:
    """The engine's candidates for `workers`, keeping only those that use them all (one task
    on a pool of two is a 1-worker configuration)."""
    from partui.profiles.bench.suite import candidates as all_candidates

    return [
        (s, e)
        for s, e in all_candidates(LAYER, workers, batch)
        if e in executors and (workers == 1 or s != "none" or e == "blas")
    ]


@contextmanager
def cancelling(engine, cancel: threading.Event):
    """While inside: a set `cancel` stops the engine's current run at once."""
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if cancel.wait(0.05):
                engine.cancel()
                return

    t = threading.Thread(target=watch, name="lab-cancel", daemon=True)
    t.start()
    try:
        yield
    finally:
        done.set()
        t.join()


def run(lab: Lab, p: dict) -> dict:
    from partui.profiles.bench.environment import OtherLoad
    from partui.profiles.records.config import RunConfig
    from partui.profiles.records.limits import RunCancelledError
    from partui.profiles.run.engine import Engine

    def measure(engine, strategy: str, executor: str, workers: int, batch: int, repeats: int):
        lab.check()
        cfg = RunConfig(
            LAYER,
            strategy=strategy,
            kernel=KERNEL,
            executor=executor,
            workers=workers,
            batch=batch,
            repeats=repeats,
            warmup=p["warmup"],
        )
        try:
            return engine.run(cfg)
        except RunCancelledError:
            raise Cancelled() from None

    other = OtherLoad()
    chosen: dict[int, dict[str, Any]] = {}
    failures: list[str] = []
    unavailable: list[str] = []
    # no CPU sampler: its thread would take the GIL from the threads being timed
    with Engine(sample_hz=0) as engine, cancelling(engine, lab.cancel):
        for w in p["workers"]:
            screened = []
            for strategy, executor in candidates(w, p["screen_batch"], p["executors"]):
                try:
                    r = measure(
                        engine,
                        strategy,
                        executor,
                        1 if executor == "inline" else w,
                        p["screen_batch"],
                        p["screen_repeats"],
                    )
                except (Cancelled, KeyboardInterrupt):
                    raise
                except Exception as exc:  # e.g. a process pool that cannot start here
                    unavailable.append(f"{strategy}/{executor} with {w} workers: {exc}")
                    continue
                if r.ok:
                    screened.append((r.median_ms, strategy, executor))
                else:
                    failures.append(f"{strategy}/{executor} w={w}: {r.error}")
            if screened:
                ms, strategy, executor = min(screened)
                chosen[w] = {
                    "strategy": strategy,
                    "executor": executor,
                    "screen_ms": ms,
                    "screened": len(screened),
                }
        times: dict[tuple[int, int], list[float]] = {}
        tasks: dict[tuple[int, int], int] = {}
        for batch in p["batches"]:
            for _ in range(p["rounds"]):  # rounds alternate the worker counts
                for w, c in chosen.items():
                    r = measure(
                        engine,
                        c["strategy"],
                        c["executor"],
                        1 if c["executor"] == "inline" else w,
                        batch,
                        p["round_repeats"],
                    )
                    if not r.ok:
                        failures.append(
                            f"{c['strategy']}/{c['executor']} w={w} b={batch}: {r.error}"
                        )
                    times.setdefault((w, batch), []).extend(r.times_ms)
                    tasks[(w, batch)] = r.tasks
            for w, c in chosen.items():
                label = f"{w} worker{'s' * (w > 1)} ({c['strategy']}/{c['executor']})"
                ms = times[(w, batch)]
                lab.add(f"{label}: latency", batch, "batch size", "ms per batch", ms)
                lab.add(
                    f"{label}: throughput",
                    batch,
                    "batch size",
                    "images per s",
                    [batch * 1000.0 / t for t in ms],
                )
    summary = summarize(lab, p, chosen, tasks, failures, other.cores())
    summary["unavailable"] = unavailable
    return summary


def _series(lab: Lab, w: int, kind: str) -> list[MemPoint]:
    prefix = f"{w} worker{'s' * (w > 1)} ("
    return sorted(
        (q for q in lab.points if q.series.startswith(prefix) and q.series.endswith(kind)),
        key=lambda q: q.x,
    )


def saturation(throughput: list[MemPoint]) -> MemPoint:
    """The first batch whose median throughput is within 10% of the best median."""
    best = max(throughput, key=lambda q: q.median)
    return next(q for q in throughput if q.median >= SATURATED * best.median)


def summarize(
    lab: Lab, p: dict, chosen: dict, tasks: dict, failures: list, other_cores: float | None
) -> dict:
    points, by_workers = [], {}
    for w in chosen:
        lat = {int(q.x): q for q in _series(lab, w, "latency")}
        thr = _series(lab, w, "throughput")
        for q in thr:
            b = int(q.x)
            points.append(
                {
                    "batch": b,
                    "workers": w,
                    "ms_per_batch": lat[b].median,
                    "ms_per_batch_min": lat[b].min,
                    "ms_per_batch_max": lat[b].max,
                    "ms_per_image": lat[b].median / b,
                    "images_per_s": q.median,
                    "images_per_s_min": q.min,
                    "images_per_s_max": q.max,
                    "tasks": tasks.get((w, b)),
                }
            )
        if not thr:
            continue
        sat, best = saturation(thr), max(thr, key=lambda q: q.median)
        first = thr[0]
        by_workers[str(w)] = {
            **chosen[w],
            "saturates_at_batch": int(sat.x),
            "images_per_s_at_saturation": sat.median,
            "best_images_per_s": best.median,
            "best_batch": int(best.x),
            "latency_ms_at_saturation": lat[int(sat.x)].median,
            "latency_ms_at_batch_1": lat[int(first.x)].median if first.x == 1 else None,
            "images_per_s_at_batch_1": first.median if first.x == 1 else None,
        }
    out: dict[str, Any] = {
        "layer": LAYER,
        "kernel": KERNEL,
        "points": points,
        "by_workers": by_workers,
        "failures": failures,
        "other_cpu_cores": other_cores,
        "load_average_1min": lab.machine.get("load_average_1min"),
    }
    if "1" in by_workers and "2" in by_workers:
        two_vs_one = {}
        for b in p["batches"]:
            one = next((q for q in _series(lab, 1, "latency") if q.x == b), None)
            two = next((q for q in _series(lab, 2, "latency") if q.x == b), None)
            if one and two:
                two_vs_one[str(b)] = compare(two, one).to_dict()
        out["two_workers_latency_vs_one"] = two_vs_one
    return out


def explain(summary: dict, lab: Lab) -> str:
    lines = [
        "The whole network forward, batch by batch. LATENCY is how long one call takes "
        "(ms per batch; an image waits for its whole batch); THROUGHPUT is how many images "
        "per second come out. Each worker count uses the configuration that was fastest at "
        "batch "
        f"{lab.params.get('screen_batch')} in a screening of every strategy and "
        "executor the engine offers."
    ]
    for w, d in summary["by_workers"].items():
        head = (
            f"{w} worker{'s' * (w != '1')}, {d['strategy']}/{d['executor']} (best of "
            f"{d['screened']}): "
        )
        if d["latency_ms_at_batch_1"] is not None:
            head += (
                f"batch 1 takes {d['latency_ms_at_batch_1']:.2f} ms "
                f"({d['images_per_s_at_batch_1']:.0f} images/s); "
            )
        sat, best_b = d["saturates_at_batch"], d["best_batch"]
        head += (
            f"throughput reaches {SATURATED:.0%} of its best at batch {sat} "
            f"({d['images_per_s_at_saturation']:.0f} images/s, "
            f"{d['latency_ms_at_saturation']:.2f} ms per batch); the best is "
            f"{d['best_images_per_s']:.0f} images/s at batch {best_b}."
        )
        if d["latency_ms_at_batch_1"] is not None and sat > 1:
            cost = d["latency_ms_at_saturation"] / d["latency_ms_at_batch_1"]
            gain = d["images_per_s_at_saturation"] / d["images_per_s_at_batch_1"]
            if cost >= 1:
                head += (
                    f" Getting there costs {cost:.1f}x the latency of batch 1 for {gain:.1f}x "
                    f"the throughput: a bigger batch amortises the per-call overhead and feeds "
                    f"the matrix multiplies larger, more efficient blocks, until the arithmetic "
                    f"units are busy and more images only wait longer."
                )
            else:
                # a batch-1 call slower than a whole batch at saturation: no cost to weigh
                head += (
                    f" A call at batch {sat} took less time than one at batch 1 "
                    f"({d['latency_ms_at_saturation']:.2f} against "
                    f"{d['latency_ms_at_batch_1']:.2f} ms) and gave {gain:.1f}x the "
                    f"throughput: here the bigger batch cost no latency at all (batch 1's "
                    f"calls were slow: read its spread)."
                )
        lines.append(head)
    cmp = summary.get("two_workers_latency_vs_one")
    if cmp:
        small, large = min(cmp, key=int), max(cmp, key=int)
        lines.append(
            f"2 workers against 1, ms per batch: at batch {small} {cmp[small]['text']}, "
            f"at batch {large} {cmp[large]['text']}. A small batch has too little work "
            f"to split (each task pays hand-off costs); a large one can keep both "
            f"cores busy, if both are free."
        )
    single = [pt for pt in summary["points"] if pt["workers"] > 1 and pt["tasks"] == 1]
    executor = summary["by_workers"].get("2", {}).get("executor")
    if single:
        batches = ", ".join(str(pt["batch"]) for pt in single)
        if executor == "blas":  # one task, but BLAS runs its matrix multiplies on both cores
            lines.append(
                f"At batch {batches} the 2-worker configuration is a single task whose "
                f"matrix multiplies BLAS runs on its 2 threads."
            )
        else:
            lines.append(
                f"At batch {batches} the 2-worker configuration made a single task: one "
                f"worker idled."
            )
    wide = [
        pt
        for pt in summary["points"]
        if pt["ms_per_batch_max"] > WIDE_SPREAD * pt["ms_per_batch_min"]
    ]
    if wide:
        lines.append(
            f"{len(wide)} of {len(summary['points'])} points have a max more than "
            f"{WIDE_SPREAD:g}x their min (calls disturbed by other programs): read the "
            f"saturation batch as rough, and the verdicts only where spreads part."
        )
    load, other = summary.get("load_average_1min"), summary.get("other_cpu_cores")
    if other is not None:
        lines.append(
            f"Other programs used {other:.2f} cores on average while this ran (load "
            f"average {load or 0:.1f} at the start): "
            + (
                "a second worker had no free core for much of the time, so the "
                "2-worker figures are pessimistic."
                if other > 0.5
                else "the machine was quiet enough for a fair comparison."
            )
        )
    if summary.get("unavailable"):
        lines.append("Not screened, could not run here: " + "; ".join(summary["unavailable"]))
    if summary["failures"]:
        lines.append("FAILED (wrong answer): " + "; ".join(summary["failures"][:3]))
    lines.append(
        "Times are wall-clock times of each call (the engine's own), median and "
        "min-max over the repeats; every call's output was checked against the "
        "float64 reference."
    )
    return "\n".join(lines)


def markers(lab: Lab, summary: dict) -> list:
    return [
        (d["saturates_at_batch"], f"{w}w saturates")
        for w, d in summary.get("by_workers", {}).items()
    ]
