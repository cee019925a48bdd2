"""Training benchmark: step vs forward, 1 vs 2 workers, sync vs Hogwild!, accuracy, memory.

Prints figures; asserts nothing (the machine is shared and noisy: read the load
average it prints, and compare ratios measured in the same run).

    python tests/benchmarks/bench_training.py [--repeats 9] [--rounds 3] [--epochs 3]

0. two-core check, before part 1 and after part 2: a native loop and numpy's sgemm on 1
   thread vs split over 2. It says what speed-up the machine allowed while it was measured.
1. step vs forward: `--pass train` at batch 64 under each strategy/executor at 1 and 2
   workers, and the best single-worker network forward, run in `--rounds` interleaved
   rounds (every configuration once per round, the order reversed each round) so that a
   change of load reaches all of them alike; medians and IQR over all repeats, and the
   per-phase wall of each step. Targets: best 1-worker step <= 3x the best 1-worker
   forward; best 2-worker step >= 1.5x faster than the best 1-worker step.
2. update rules, interleaved epoch by epoch in one process: sync/reduce on 1 worker (the
   baseline), and at 2 workers sync/reduce, sync/locked and Hogwild! on threads and on
   processes. Images/s (median of the epochs after the first), the 2-worker speed-up in
   images/s over the 1-worker run, test accuracy after the same number of epochs and at
   the same training time (each run's own time: its epochs and scoring, not the others'
   turns).
3. `partui train --epochs 3` as a user runs it (default settings: threads), and again
   with `--executor processes`: test accuracy, wall time (target: >= 95% within 60 s)
   and the peak RSS of its process tree (target: <= 1 GB), polled every 50 ms.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

from partui.profiles.records.config import RunConfig
from partui.profiles.run.engine import Engine
from partui.profiles.run.passes import phase_walls


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def iqr(times) -> float:
    q1, q3 = np.percentile(times, [25, 75])
    return float(q3 - q1)


def two_core_check() -> dict:
    """What the machine allows right now: the same work on 1 thread and split over 2, for a
    plain native loop and for numpy's sgemm (both without the interpreter lock). On a machine
    whose other core is busy neither scales, and no 2-worker result can."""
    import threading

    from numba import njit
    from threadpoolctl import threadpool_limits

    @njit(nogil=True)
    def spin(n):
        s = 0.0
        for i in range(n):
            s += (i % 7) * 0.5
        return s

    a = np.random.default_rng(0).random((1000, 600), dtype=np.float32)
    b = np.random.default_rng(1).random((600, 300), dtype=np.float32)

    def gemm(k):
        for _ in range(k):
            a @ b

    def timed(fn, arg, threads):
        ts = [threading.Thread(target=fn, args=(arg,)) for _ in range(threads)]
        t0 = time.perf_counter()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return time.perf_counter() - t0

    out = {}
    with threadpool_limits(1):
        spin(10)
        gemm(1)
        for name, fn, arg in (("native loop", spin, 10_000_000), ("sgemm", gemm, 10)):
            one = min(timed(lambda x: (fn(x), fn(x)), arg, 1) for _ in range(5))
            two = min(timed(fn, arg, 2) for _ in range(5))
            out[name] = one / two
    print(
        "  two-core check (the same work on 1 thread vs split over 2, best of 5): "
        + ", ".join(f"{k} {v:.2f}x" for k, v in out.items()),
        flush=True,
    )
    return out


def step_vs_forward(repeats: int, rounds: int) -> dict:
    from dataclasses import replace

    configs = {
        "forward none/inline w1": RunConfig(
            "network", strategy="none", executor="inline", workers=1
        ),
        "forward batch/threads w1": RunConfig("network", workers=1),
        "forward batch/threads w2": RunConfig("network", workers=2),
        "train none/inline w1": RunConfig(
            "network", strategy="none", executor="inline", workers=1, pass_kind="train"
        ),
    }
    for workers in (1, 2):
        for executor in ("threads", "processes"):
            for combine in ("reduce", "locked"):
                if workers == 1 and combine == "locked":
                    continue
                configs[f"train batch/{executor}/{combine} w{workers}"] = RunConfig(
                    "network",
                    executor=executor,
                    workers=workers,
                    pass_kind="train",
                    combine=combine,
                )
    per_round = -(-repeats // rounds)
    times: dict[str, list[float]] = {k: [] for k in configs}
    spans: dict[str, list] = {k: [] for k in configs}
    ok = dict.fromkeys(configs, True)
    names = list(configs)
    with Engine(sample_hz=0) as engine:
        for r in range(rounds):
            for name in names if r % 2 == 0 else names[::-1]:
                cfg = replace(configs[name], repeats=per_round, warmup=2 if r == 0 else 1)
                res = engine.run(cfg)
                times[name] += res.times_ms
                # repeats of different rounds kept apart for the phase walls
                spans[name] += [replace(sp, repeat=sp.repeat + 1000 * r) for sp in res.spans]
                ok[name] = ok[name] and res.ok
            print(f"  round {r + 1}/{rounds} done, load average {load()}", flush=True)
    rows = {}
    for name, cfg in configs.items():
        walls = phase_walls(spans[name], cfg.pass_kind) if cfg.pass_kind == "train" else {}
        med = float(np.median(times[name]))
        rows[name] = {"median_ms": med, "iqr_ms": iqr(times[name]), "ok": ok[name]}
        rows[name]["phases_ms"] = walls
        rows[name]["repeats"] = len(times[name])
        phases = "  ".join(f"{k} {v:.2f}" for k, v in walls.items())
        print(
            f"  {name:<34} median {med:7.2f} ms  IQR {iqr(times[name]):6.2f}  "
            f"{'OK' if ok[name] else 'WRONG'}  {phases}",
            flush=True,
        )
    fwd1 = min(
        v["median_ms"] for k, v in rows.items() if k.startswith("forward") and k.endswith("w1")
    )
    step1 = min(
        v["median_ms"] for k, v in rows.items() if k.startswith("train") and k.endswith("w1")
    )
    step2 = min(
        v["median_ms"] for k, v in rows.items() if k.startswith("train") and k.endswith("w2")
    )
    print(
        f"  best 1-worker forward {fwd1:.2f} ms; best step: 1 worker {step1:.2f} ms, 2 workers "
        f"{step2:.2f} ms"
    )
    print(
        f"  step / forward (1 worker) = {step1 / fwd1:.2f}x  (target <= 3x: "
        f"{'met' if step1 / fwd1 <= 3 else 'NOT met'})"
    )
    print(
        f"  step speed-up 2 vs 1 worker = {step1 / step2:.2f}x  (target >= 1.5x: "
        f"{'met' if step1 / step2 >= 1.5 else 'NOT met'})"
    )
    return {"rows": rows, "forward_1w_ms": fwd1, "step_1w_ms": step1, "step_2w_ms": step2}


def compare_updates(epochs: int, train_size: int, test_size: int) -> dict:
    from partui.profiles.records.train_config import TrainConfig
    from partui.profiles.system import blas
    from partui.profiles.train import datasets
    from partui.profiles.train.trainer import Trainer

    data = datasets.builtin_letters(train_size, test_size, 0)
    runs = {}
    for update, combine, executor, workers in (
        ("sync", "reduce", "inline", 1),
        ("sync", "reduce", "threads", 2),
        ("sync", "locked", "threads", 2),
        ("hogwild", "reduce", "threads", 2),
        ("sync", "reduce", "processes", 2),
        ("hogwild", "reduce", "processes", 2),
    ):
        cfg = TrainConfig(
            epochs=epochs,
            workers=workers,
            executor=executor,
            update=update,
            combine=combine,
            train_size=train_size,
            test_size=test_size,
        )
        name = f"{update}{'/' + combine if update == 'sync' else ''} {executor} w{workers}"
        runs[name] = Trainer(cfg, data)
    names = list(runs)
    gens = {name: t.epochs() for name, t in runs.items()}
    with blas.limit(1):  # for all runs: each one's own limit ends when another's is still on
        for e in range(epochs):
            for name in names if e % 2 == 0 else names[::-1]:
                next(gens[name])
            print(f"  epoch {e + 1}/{epochs} of every run done, load average {load()}", flush=True)
    for g in gens.values():
        g.close()
    out = {}
    for name, t in runs.items():
        r = t.result
        own = np.cumsum([ep.wall_s + ep.eval_s for ep in r.epochs])  # this run's own time
        # epoch 1 carries the workers' first kernel loads (each new process loads them)
        steady = r.epochs[1:] or r.epochs
        ips = float(np.median([ep.images_per_s for ep in steady]))
        out[name] = {
            "images_per_s": ips,
            "images_per_s_by_epoch": [ep.images_per_s for ep in r.epochs],
            "accuracy_by_epoch": [ep.test_accuracy for ep in r.epochs],
            "own_time_s": [float(x) for x in own],
            "accuracy": r.test_accuracy,
        }
    base = out[names[0]]["images_per_s"]
    budget = min(v["own_time_s"][-1] for v in out.values())
    for name, v in out.items():
        done = [i for i, x in enumerate(v["own_time_s"]) if x <= budget + 1e-9]
        v["accuracy_at_budget"] = v["accuracy_by_epoch"][done[-1]] if done else float("nan")
        v["speedup_vs_1_worker"] = v["images_per_s"] / base
        per_epoch = ", ".join(
            f"{100 * a:.1f}%@{x:.1f}s" for a, x in zip(v["accuracy_by_epoch"], v["own_time_s"])
        )
        print(
            f"  {name:<28} images/s {v['images_per_s']:7.0f} ({v['speedup_vs_1_worker']:.2f}x "
            f"the 1-worker run)  test accuracy after {epochs} epochs "
            f"{100 * v['accuracy']:5.1f}%  (per epoch, at own time: {per_epoch})",
            flush=True,
        )
    print(f"  at the same training time ({budget:.1f} s, the fastest run's total):")
    for name, v in out.items():
        n_done = sum(x <= budget + 1e-9 for x in v["own_time_s"])
        print(f"    {name:<28} {100 * v['accuracy_at_budget']:5.1f}%  ({n_done} epochs)")
    return out


def user_run(args_extra) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "train.json"
        cmd = [
            sys.executable,
            "-m",
            "partui.tui.cli.main",
            "train",
            "--epochs",
            "3",
            "--json",
            "--out",
            str(out),
            *args_extra,
        ]
        t0 = time.perf_counter()
        # output to files, not pipes: nobody reads a pipe while the run goes on, and a full one
        # (the per-step progress on stderr) would stop the run
        stdout_f = open(Path(tmp) / "stdout.txt", "w+")  # closed below
        stderr_f = open(Path(tmp) / "stderr.txt", "w+")
        proc = subprocess.Popen(cmd, stdout=stdout_f, stderr=stderr_f, text=True)
        ps = psutil.Process(proc.pid)
        peak = 0
        while proc.poll() is None:
            try:
                tree = [ps, *ps.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.05)
        wall = time.perf_counter() - t0
        proc.wait()
        stdout_f.seek(0)
        stderr_f.seek(0)
        stdout, stderr = stdout_f.read(), stderr_f.read()
        stdout_f.close()
        stderr_f.close()
        if proc.returncode != 0:
            print(stderr)
            return {"exit": proc.returncode}
        d = json.loads(stdout)
    losses = [p[2] for p in d["loss_curve"]]
    first = [e["elapsed_s"] for e in d["epochs"] if e["test_accuracy"] >= 0.95]
    print(
        f"  `partui train --epochs 3 {' '.join(args_extra)}`: test accuracy "
        f"{100 * d['test_accuracy']:.1f}% after {d['epochs'][-1]['elapsed_s']:.1f} s of training "
        f"({wall:.1f} s wall, data and start-up included); loss {losses[0]:.3f} -> "
        f"{np.mean(losses[-20:]):.3f}; >= 95% first at "
        f"{f'{first[0]:.1f} s' if first else 'never'}; peak RSS of the tree {peak / 2**20:.0f} MiB"
    )
    return {
        "accuracy": d["test_accuracy"],
        "train_s": d["epochs"][-1]["elapsed_s"],
        "wall_s": wall,
        "peak_rss_bytes": peak,
        "first_95_s": first[0] if first else None,
        "epochs": [
            {
                k: e[k]
                for k in (
                    "epoch",
                    "train_loss",
                    "test_accuracy",
                    "images_per_s",
                    "elapsed_s",
                    "phase_ms",
                    "worker_busy_share",
                )
            }
            for e in d["epochs"]
        ],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds of part 1")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--train-size", type=int, default=6000)
    p.add_argument("--test-size", type=int, default=1000)
    p.add_argument("--skip", default="", help="comma list of parts to skip: step,updates,user")
    p.add_argument("--json", metavar="FILE", help="also write the figures here")
    a = p.parse_args()
    skip = set(filter(None, a.skip.split(",")))
    out = {"load_before": load(), "cpus": psutil.cpu_count()}
    print(f"load average {out['load_before']}  ({out['cpus']} logical CPUs)")
    out["two_core_check"] = two_core_check()
    if "step" not in skip:
        print(
            f"1. training step vs forward, batch 64, {a.repeats} repeats in {a.rounds} "
            f"interleaved rounds"
        )
        out["step"] = step_vs_forward(a.repeats, a.rounds)
        print(f"   load average {load()}")
    if "updates" not in skip:
        print(
            f"2. update rules, 1 vs 2 workers, interleaved epoch by epoch: {a.epochs} epochs of "
            f"{a.train_size} images"
        )
        out["updates"] = compare_updates(a.epochs, a.train_size, a.test_size)
        print(f"   load average {load()}")
        out["two_core_check_after"] = two_core_check()
    if "user" not in skip:
        print("3. as a user runs it")
        out["user"] = user_run([])
        out["user_processes"] = user_run(["--executor", "processes"])
        print(f"   load average {load()}")
    out["load_after"] = load()
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
