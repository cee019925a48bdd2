"""Exports of a snapshot: Chrome Trace Event JSON (Perfetto, chrome://tracing, speedscope)
and CSV (one row per run).

Trace layout: every run is a process ("run 3: conv2 batch/vectorized/threads w=2 b=64")
whose threads are its workers (tid = worker index) with one X event per task, plus a
"repeats" lane and counter tracks "cpu0 %", "cpu1 %", ... (0-100 per core) and the
engine's, partui's and other programs' CPU in % of one core (at most 100 x cores). Process-pool
workers appear under their own OS pid, named "worker k (pid P)", and so do a Dask cluster's
("Dask worker NAME (ADDRESS, pid P)"; its transfers are "transfer task k" events, in bytes).
Times are microseconds from the first event of the snapshot (all spans use CLOCK_MONOTONIC,
shared by processes; a Dask run's compute spans are mapped onto it, see dask_executor).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator

from partui.kernels.plan.pass_axes import TRANSFER
from partui.profiles.records.results import CONFIG_SUMMARY
from partui.profiles.store.analysis import analyze

EVENTS_PER_CHUNK = 1024  # a trace's text is made this many events at a time
REPEAT_TID = 10_000  # the lane of repeat extents inside a run's process
# Runs are pids 1, 2, ...: process workers keep their real pids, which are never that small.


def _meta(kind: str, pid: int, name: str, tid: int | None = None, sort: int | None = None):
    ev = {"ph": "M", "name": kind, "pid": pid, "args": {"name": name}}
    if tid is not None:
        ev["tid"] = tid
    out = [ev]
    if sort is not None:
        out.append(
            {
                "ph": "M",
                "name": kind.replace("_name", "_sort_index"),
                "pid": pid,
                **({"tid": tid} if tid is not None else {}),
                "args": {"sort_index": sort},
            }
        )
    return out


def chrome_trace(snap) -> dict:
    """The whole trace as one object (see chrome_trace_text for a large snapshot)."""
    return {"traceEvents": list(trace_events(snap)), **_trace_tail(snap)}


def chrome_trace_text(snap) -> Iterator[str]:
    """The trace as JSON text, an event at a time: a large snapshot's trace is never held
    whole, as objects or as text. JSON escapes every control and non-ASCII character."""
    yield '{"traceEvents":['
    sep, batch = "", []
    for event in trace_events(snap):
        batch.append(event)
        if len(batch) == EVENTS_PER_CHUNK:
            yield sep + json.dumps(batch, separators=(",", ":"))[1:-1]
            sep, batch = ",", []
    if batch:
        yield sep + json.dumps(batch, separators=(",", ":"))[1:-1]
    yield "]," + json.dumps(_trace_tail(snap), separators=(",", ":"))[1:] + "\n"


def _trace_tail(snap) -> dict:
    return {
        "displayTimeUnit": "ms",
        "otherData": {
            "partui_version": snap.partui_version,
            "created": snap.created,
            "note": snap.note,
            "cpu": snap.machine.cpu_model or "",
        },
    }


def trace_events(snap) -> Iterator[dict]:
    """Every event of the Chrome trace, in order: each run's names, spans, repeats and CPU."""
    results = snap.results()
    t0 = min(
        (
            t
            for r in results
            for t in (*(s.start_ns for s in r.spans), *(c.t_ns for c in r.cpu_samples))
        ),
        default=0,
    )

    def us(ns: int) -> float:
        return (ns - t0) / 1000.0

    named_pids: set[int] = set()
    for i, r in enumerate(results, start=1):
        c = r.config
        pid = i
        # a process pool's workers and a Dask cluster's: one track (process) each
        processes = c.executor in ("processes", "dask")
        dask = {w.get("pid"): w for w in (getattr(r, "dask", None) or {}).get("workers", [])}
        yield from _meta("process_name", pid, f"run {i}: {c.label()}", sort=i)
        yield from _meta("thread_name", pid, "repeats", REPEAT_TID, sort=-1)
        tids: dict[int, int] = {}
        for s in r.spans:
            tids.setdefault(s.worker, s.tid)
        for w, tid in sorted(tids.items()):
            if processes:
                if tid not in named_pids:  # a pool serves several runs: name it once
                    named_pids.add(tid)
                    name = f"worker {w} (pid {tid})"
                    if tid in dask:
                        d = dask[tid]
                        name = f"Dask worker {d.get('name')} ({d.get('address')}, pid {tid})"
                    yield from _meta("process_name", tid, name, sort=10_000 + w)
                    yield from _meta("thread_name", tid, f"worker {w}", w)
            else:
                yield from _meta("thread_name", pid, f"worker {w} (tid {tid})", w, sort=w)

        def moved(s, dask_run=c.executor == "dask") -> bool:
            return dask_run and s.phase == TRANSFER  # its units are bytes, not FLOPs

        extents: dict[int, list[int]] = {}
        for s in r.spans:
            yield (
                {
                    "ph": "X",
                    "name": (
                        f"transfer task {s.task}"
                        if moved(s)
                        else f"task {s.task}" + (f" phase {s.phase}" if s.phase else "")
                    ),
                    "cat": "transfer" if moved(s) else c.strategy,
                    "pid": s.tid if processes else pid,
                    "tid": s.worker,
                    "ts": us(s.start_ns),
                    "dur": s.duration_ns / 1000.0,
                    "args": {
                        "run": i,
                        "repeat": s.repeat,
                        "task": s.task,
                        "phase": s.phase,
                        ("bytes" if moved(s) else "flops"): s.units,
                        "worker": s.worker,
                        "native_id": s.tid,
                    },
                }
            )
            e = extents.setdefault(s.repeat, [s.start_ns, s.end_ns])
            e[0], e[1] = min(e[0], s.start_ns), max(e[1], s.end_ns)
        for rep, (a, b) in sorted(extents.items()):
            yield (
                {
                    "ph": "X",
                    "name": f"repeat {rep}",
                    "cat": "repeat",
                    "pid": pid,
                    "tid": REPEAT_TID,
                    "ts": us(a),
                    "dur": (b - a) / 1000.0,
                    "args": {"run": i, "repeat": rep},
                }
            )
        cores = snap.machine.logical_cores or 0
        for sample in r.cpu_samples:
            yield from cpu_counters(sample, pid, us(sample.t_ns), cores)


def cpu_counters(sample, pid: int, ts: float, cores: int = 0) -> list[dict]:
    """Counter events of one CPU sample, in the dashboard's units.

    Per core: 0-100 (a core the sample could not read is left out, not drawn as 0).
    Processes: % of one core, never more than 100 x the logical cores.
    """
    cap = 100.0 * (cores or len(sample.per_core) or 1)
    out = [
        {
            "ph": "C",
            "name": f"cpu{core} %",
            "pid": pid,
            "ts": ts,
            "args": {"%": round(min(100.0, max(0.0, pct)), 2)},
        }
        for core, pct in enumerate(sample.per_core)
        if pct == pct
    ]
    for name, value in (
        ("engine CPU % of one core", sample.engine_cpu),
        ("partui CPU % of one core", sample.partui_cpu),
        ("other programs CPU % of one core", sample.others_cpu),
    ):
        if value is not None and value == value:
            out.append(
                {
                    "ph": "C",
                    "name": name,
                    "pid": pid,
                    "ts": ts,
                    "args": {"%": round(min(cap, max(0.0, value)), 2)},
                }
            )
    return out


CSV_FIELDS = [
    *CONFIG_SUMMARY,
    "repeats",
    "median_ms",
    "min_ms",
    "max_ms",
    "q1_ms",
    "q3_ms",
    "iqr_ms",
    "gflops",
    "speedup_vs_1_worker",
    "speedup_vs_baseline",
    "baseline_ms",
    "baseline",
    "efficiency",
    "imbalance",
    "on_cpu_ratio_mean",
    "pool_startup_ms",
    "max_abs_error",
    "ok",
]


def _num(v):
    if isinstance(v, float):
        return "" if not math.isfinite(v) else f"{v:.6g}"
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v  # a spreadsheet would run it as a formula (numbers are not strings here)
    return v


def csv_text(snap) -> str:
    analysis = analyze(snap.results(), snap.baseline, "this snapshot")
    buf = io.StringIO()
    w = csv.DictWriter(buf, CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for row in analysis.rows:
        r, st, c = row.result, row.stats, row.result.config
        ratios = [x for x in r.on_cpu_ratio if x == x]
        w.writerow(
            {
                k: _num(v)
                for k, v in {
                    **{k: getattr(c, k) for k in (*CONFIG_SUMMARY, "repeats")},
                    "median_ms": r.median_ms,
                    "min_ms": r.min_ms,
                    "max_ms": r.max_ms,
                    "q1_ms": r.q1_ms,
                    "q3_ms": r.q3_ms,
                    "iqr_ms": st.iqr,
                    "gflops": r.gflops,
                    "speedup_vs_1_worker": st.speedup_1w,
                    "speedup_vs_baseline": st.speedup_honest,
                    "baseline_ms": row.baseline.median_ms if row.baseline else float("nan"),
                    "baseline": row.baseline.label() if row.baseline else "",
                    "efficiency": st.efficiency,
                    "imbalance": st.imbalance,
                    "on_cpu_ratio_mean": sum(ratios) / len(ratios) if ratios else float("nan"),
                    "pool_startup_ms": r.pool_startup_ms,
                    "max_abs_error": r.max_abs_error,
                    "ok": r.ok,
                }.items()
            }
        )
    return buf.getvalue()
