"""What Hogwild!'s version stamps measure and what they cost.

Prints figures; asserts nothing (the machine is shared: read the load average it prints).

    python tests/benchmarks/bench_stamps.py [--epochs 6] [--train-size 6000] [--repeats 2000]

1. the update alone: the stamped native update (12 blocks, three atomic adds each, plus the
   versions read before the step) against the plain native SGD update of the same flat
   weights, one thread, interleaved in rounds; medians and min-max of ns per update. Then
   two threads updating the same weights at once (the counters' lines move between cores).
2. training: Hogwild! at 2 workers on threads and on processes, with and without the
   stamps, four runs interleaved epoch by epoch (the order reversed every epoch); the first
   epoch of each is left out (workers load their kernels). Images/s per epoch (median,
   min-max), and the staleness (median, p95, max) and overlapping writes the stamped runs
   measured.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def spread(values) -> str:
    v = np.asarray(values, np.float64)
    return f"{np.median(v):.0f} ({v.min():.0f}-{v.max():.0f})"


def update_cost(repeats: int, rounds: int = 5) -> dict:
    from partui.kernels.grad import native, stamps, stamps_native, training
    from partui.kernels.warmup import compile_kernels

    compile_kernels(["network"])
    n = training.NETWORK_PARAMS
    edges = stamps.blocks(training.NETWORK_LAYOUT)
    rng = np.random.default_rng(0)
    p, g = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    v = np.zeros(n, np.float32)
    counters = np.zeros(stamps.counter_words(len(edges) - 1), np.int64)
    seen = np.zeros(len(edges) - 1, np.int64)
    stale = np.zeros_like(seen)
    lr, mom = np.float32(1e-9), np.float32(0.9)

    def plain():
        native.sgd_range(p, g, v, p, 0, n, lr, mom, 2)

    def stamped():
        stamps_native.read_versions(counters, seen)
        stamps_native.stamped_sgd(p, g, v, counters, edges, seen, stale, lr, mom, 2)

    times: dict[str, list[float]] = {"plain": [], "stamped": []}
    for r in range(rounds):
        order = [("plain", plain), ("stamped", stamped)]
        for name, fn in order if r % 2 == 0 else order[::-1]:
            for _ in range(repeats // rounds):
                t0 = time.perf_counter_ns()
                fn()
                times[name].append(time.perf_counter_ns() - t0)
    out = {
        k: {"median_ns": float(np.median(t)), "min_ns": min(t), "max_ns": max(t)}
        for k, t in times.items()
    }
    extra = out["stamped"]["median_ns"] - out["plain"]["median_ns"]
    us = {k: (o["median_ns"] / 1e3, o["min_ns"] / 1e3, o["max_ns"] / 1e3) for k, o in out.items()}
    print(
        f"  update of {n} weights in {len(edges) - 1} blocks, {repeats} calls each in {rounds} "
        "interleaved rounds: "
        + ", ".join(f"{k} {m:.1f} us (min {lo:.1f}, max {hi:.1f})" for k, (m, lo, hi) in us.items())
        + f"; the stamps add {extra / 1e3:+.2f} us per update (medians)"
    )
    return out


def contended_cost(calls: int, rounds: int = 5) -> dict:
    """Two threads updating the same weights at once, as Hogwild! workers do: plain against
    stamped (the counters' cache lines then move between the cores). ns per update."""
    import threading

    from partui.kernels.grad import native, stamps, stamps_native, training

    n = training.NETWORK_PARAMS
    edges = stamps.blocks(training.NETWORK_LAYOUT)
    nb = len(edges) - 1
    rng = np.random.default_rng(1)
    p = rng.standard_normal(n).astype(np.float32)
    gs = [rng.standard_normal(n).astype(np.float32) for _ in range(2)]
    vs = [np.zeros(n, np.float32) for _ in range(2)]
    counters = np.zeros(stamps.counter_words(nb), np.int64)
    lr, mom = np.float32(1e-9), np.float32(0.9)

    def worker(i, stamped, out, start):
        seen, stale = np.zeros(nb, np.int64), np.zeros(nb, np.int64)
        start.wait()
        t = []
        for _ in range(calls):
            t0 = time.perf_counter_ns()
            if stamped:
                stamps_native.read_versions(counters, seen)
                stamps_native.stamped_sgd(p, gs[i], vs[i], counters, edges, seen, stale, lr, mom, 2)
            else:
                native.sgd_range(p, gs[i], vs[i], p, 0, n, lr, mom, 2)
            t.append(time.perf_counter_ns() - t0)
        out[i] = t

    times: dict[str, list[int]] = {"plain": [], "stamped": []}
    for r in range(rounds):
        for name in ("plain", "stamped") if r % 2 == 0 else ("stamped", "plain"):
            out: list = [None, None]
            start = threading.Barrier(2)
            th = [
                threading.Thread(target=worker, args=(i, name == "stamped", out, start))
                for i in range(2)
            ]
            for t in th:
                t.start()
            for t in th:
                t.join()
            times[name] += out[0] + out[1]
    res = {k: {"median_ns": float(np.median(t)), "min_ns": min(t)} for k, t in times.items()}
    print(
        f"  two threads at once, {calls} updates each x {rounds} interleaved rounds: "
        + ", ".join(
            f"{k} {o['median_ns'] / 1e3:.1f} us (min {o['min_ns'] / 1e3:.1f})"
            for k, o in res.items()
        )
        + f"; the stamps add {(res['stamped']['median_ns'] - res['plain']['median_ns']) / 1e3:+.2f}"
        " us per update (medians)"
    )
    return res


def training_cost(epochs: int, train_size: int, batch: int) -> dict:
    from partui.profiles.records.train_config import TrainConfig
    from partui.profiles.system import blas
    from partui.profiles.train import datasets
    from partui.profiles.train.trainer import Trainer

    data = datasets.builtin_letters(train_size, 500, 0)
    runs = {}
    for executor in ("threads", "processes"):
        for stamp in (True, False):
            cfg = TrainConfig(
                epochs=epochs,
                batch=batch,
                workers=2,
                executor=executor,
                update="hogwild",
                train_size=train_size,
                test_size=500,
                stamp=stamp,
            )
            runs[f"{executor} {'stamped' if stamp else 'plain'}"] = Trainer(cfg, data)
    names = list(runs)
    gens = {k: t.epochs() for k, t in runs.items()}
    with blas.limit(1):
        for e in range(epochs):
            for k in names if e % 2 == 0 else names[::-1]:
                next(gens[k])
            print(f"  epoch {e + 1}/{epochs} of every run, load average {load()}", flush=True)
    for gen in gens.values():
        gen.close()
    out = {}
    for k, t in runs.items():
        r = t.result
        ips = [ep.images_per_s for ep in r.epochs[1:]]
        out[k] = {
            "images_per_s": ips,
            "staleness": r.staleness,
            "overlapping_updates": r.overlapping_updates,
            "block_writes": (r.staleness or {}).get("updates"),
        }
        st = r.staleness
        stamps = (
            f"  staleness median {st['median']} p95 {st['p95']} max {st['max']}, "
            f"overlapping {r.overlapping_updates} of {st['updates']} block writes"
            if st
            else ""
        )
        print(f"  {k:<20} images/s {spread(ips)} over {len(ips)} epochs{stamps}")
    for executor in ("threads", "processes"):
        a = np.median(out[f"{executor} stamped"]["images_per_s"])
        b = np.median(out[f"{executor} plain"]["images_per_s"])
        print(f"  {executor}: stamped / plain images/s = {a / b:.3f}")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=6, help="epochs per run (the first left out)")
    p.add_argument("--train-size", type=int, default=6000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=2000, help="calls per update kind")
    p.add_argument("--json", metavar="FILE", help="also write the figures here")
    a = p.parse_args()
    out = {"load_before": load()}
    print(f"load average {out['load_before']}")
    print("1. the update alone, one thread")
    out["update"] = update_cost(a.repeats)
    out["contended"] = contended_cost(a.repeats // 5)
    print(
        f"2. Hogwild! at 2 workers, batch {a.batch}, {a.epochs} epochs of {a.train_size} images, "
        "four runs interleaved epoch by epoch"
    )
    out["training"] = training_cost(a.epochs, a.train_size, a.batch)
    out["load_after"] = load()
    print(f"load average {out['load_after']}")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
