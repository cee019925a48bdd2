"""Dask against the local executors on this machine: the network forward, measured back to back.

1. The network at batch 64 and 256: dask (a LocalCluster of 2 worker processes), processes
   and threads at 2 workers, and the best single worker (inline, one task): medians and
   min-max over interleaved rounds, and for dask the split of a task's time into send,
   compute, fetch and scheduling (medians over the timed tasks).
2. The smallest batch at which dask at 2 workers beats one worker (inline), doubling the
   batch from 16 up to 1024: a verdict only where the min-max spreads do not overlap.

Prints figures (and the load average before and after); asserts nothing.

    python tests/benchmarks/bench_dask.py [--rounds 3] [--repeats 7] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from partui.kernels.warmup import compile_kernels
from partui.profiles.records.config import RunConfig
from partui.profiles.run.engine import Engine


def load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cfg(executor: str, batch: int, repeats: int) -> RunConfig:
    if executor == "inline":
        return RunConfig(
            "network",
            strategy="none",
            executor="inline",
            workers=1,
            batch=batch,
            repeats=repeats,
            warmup=2,
        )
    return RunConfig(
        "network", executor=executor, workers=2, batch=batch, repeats=repeats, warmup=2
    )


def measure(engine: Engine, configs: dict, rounds: int) -> dict:
    """Each configuration once per round, rounds interleaved; all repeats pooled."""
    times: dict[str, list[float]] = {k: [] for k in configs}
    dask: dict[str, list[dict]] = {k: [] for k in configs}
    for _ in range(rounds):
        for key, c in configs.items():
            r = engine.run(c)
            assert r.ok, (key, r.error)
            times[key] += r.times_ms
            if r.dask:
                dask[key].append(r.dask)
    out = {}
    for key, t in times.items():
        d = dask[key]
        split = {
            f: statistics.median(x[f] for x in d)
            for f in ("task_send_ms", "task_compute_ms", "task_fetch_ms", "task_overhead_ms")
        } if d else {}  # fmt: skip
        out[key] = {"median": statistics.median(t), "min": min(t), "max": max(t), "n": len(t)}
        out[key].update(split)
        if d:
            out[key]["bytes"] = d[-1]["bytes_out_per_repeat"] + d[-1]["bytes_back_per_repeat"]
            out[key]["clock"] = [
                (w["clock_offset_ms"], w["clock_uncertainty_ms"]) for w in d[-1]["workers"]
            ]
    return out


def show(title: str, figures: dict) -> None:
    print(title)
    for key, f in figures.items():
        line = (
            f"  {key:<22} median {f['median']:8.2f} ms  min-max {f['min']:.2f}-{f['max']:.2f}"
            f"  n={f['n']}"
        )
        if "task_compute_ms" in f:
            line += (
                f"\n  {'':<22} per task: send {f['task_send_ms']:.2f}  compute "
                f"{f['task_compute_ms']:.2f}  fetch {f['task_fetch_ms']:.2f}  scheduling "
                f"{f['task_overhead_ms']:.2f} ms;  {f['bytes'] / 2**10:.0f} KiB moved a repeat"
                f"; clock offsets {', '.join(f'{o:+.2f}+-{u:.2f}' for o, u in f['clock'])} ms"
            )
        print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="1 round, 3 repeats, batches 64/256")
    args = ap.parse_args()
    rounds, repeats = (1, 3) if args.quick else (args.rounds, args.repeats)
    compile_kernels(["network"])
    print(f"cores {os.cpu_count()}  load before {load()}  rounds {rounds} x {repeats} repeats")
    with Engine(sample_hz=0) as engine:
        t0 = time.perf_counter()
        engine.run(cfg("dask", 8, 1))  # starts the LocalCluster (timed apart)
        startup = engine.executor("dask", 2).startup_ms
        print(f"LocalCluster of 2 workers started in {startup:.0f} ms (not in any figure)")
        for batch in (64, 256):
            configs = {
                f"{e} b={batch}": cfg(e, batch, repeats)
                for e in ("inline", "threads", "processes", "dask")
            }
            figures = measure(engine, configs, rounds)
            show(f"network forward, batch {batch} (inline: 1 worker, the others: 2)", figures)
            base = figures[f"inline b={batch}"]["median"]
            for key, f in figures.items():
                print(f"  {key:<22} x{base / f['median']:.2f} vs 1 worker")
        print("smallest batch where dask at 2 workers beats 1 worker (spreads apart):")
        found = None
        for batch in (16, 32, 64, 128, 256, 512, 1024)[: 3 if args.quick else None]:
            pair = {"inline": cfg("inline", batch, repeats), "dask": cfg("dask", batch, repeats)}
            figures = measure(engine, pair, rounds)
            a, d = figures["inline"], figures["dask"]
            verdict = (
                "dask faster"
                if d["max"] < a["min"]
                else "dask slower"
                if d["min"] > a["max"]
                else "spreads overlap"
            )
            print(
                f"  batch {batch:>4}: 1 worker {a['median']:8.2f} ms "
                f"({a['min']:.2f}-{a['max']:.2f})"
                f"  dask {d['median']:8.2f} ms ({d['min']:.2f}-{d['max']:.2f})  {verdict}"
            )
            if verdict == "dask faster" and found is None:
                found = batch
                break
        print(f"  -> {found if found else 'none up to the largest batch tried'}")
        print(f"total {time.perf_counter() - t0:.0f} s  load after {load()}")


if __name__ == "__main__":
    main()
