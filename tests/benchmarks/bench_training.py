"""Training benchmark: the step against the forward, 1 vs 2 workers, sync vs Hogwild!, accuracy,
memory.

Prints figures; asserts nothing (the machine is shared and noisy: read the load
average it prints, and compare ratios measured in the same run).

    python tests/benchmarks/bench_training.py [--repeats 9] [--epochs 2] [--train-size 6000]

1. step vs forward: medians (and IQR) of `--pass train` at batch 64 under each
   strategy/executor at 1 and 2 workers, the best single-worker network forward,
   and the per-phase wall of each step; targets: best 1-worker step <= 3x the
   best 1-worker forward; best 2-worker step >= 1.5x faster than the best 1-worker step.
2. sync/reduce vs sync/locked vs Hogwild! at 2 workers (threads): images/s and
   test accuracy after the same number of epochs, and at the same wall time.
3. `partui train --epochs 3` as a user runs it (default settings): test accuracy,
   wall time (target: >= 95% within 60 s) and the peak RSS of its process tree
   (target: <= 1 GB), polled every 50 ms.
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

from partui.profiles.engine import Engine, RunConfig
from partui.profiles.passes import phase_walls


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def iqr(times) -> float:
    q1, q3 = np.percentile(times, [25, 75])
    return float(q3 - q1)


def step_vs_forward(repeats: int) -> dict:
    rows = {}
    configs = {
        "forward none/inline w1": RunConfig(
            "network", "none", "vectorized", "inline", 1, 64, repeats, 2
        ),
        "forward batch/threads w1": RunConfig(
            "network", "batch", "vectorized", "threads", 1, 64, repeats, 2
        ),
        "forward batch/threads w2": RunConfig(
            "network", "batch", "vectorized", "threads", 2, 64, repeats, 2
        ),
    }
    for workers in (1, 2):
        for executor in ("threads", "processes"):
            for combine in ("reduce", "locked"):
                if workers == 1 and combine == "locked":
                    continue
                configs[f"train batch/{executor}/{combine} w{workers}"] = RunConfig(
                    "network",
                    "batch",
                    "vectorized",
                    executor,
                    workers,
                    64,
                    repeats,
                    2,
                    pass_kind="train",
                    combine=combine,
                )
    configs["train none/inline w1"] = RunConfig(
        "network", "none", "vectorized", "inline", 1, 64, repeats, 2, pass_kind="train"
    )
    with Engine(sample_hz=0) as engine:
        for name, cfg in configs.items():
            r = engine.run(cfg)
            walls = phase_walls(r.spans, cfg.pass_kind) if cfg.pass_kind == "train" else {}
            rows[name] = {
                "median_ms": r.median_ms,
                "iqr_ms": iqr(r.times_ms),
                "ok": r.ok,
                "phases_ms": walls,
            }
            phases = "  ".join(f"{k} {v:.2f}" for k, v in walls.items())
            print(
                f"  {name:<34} median {r.median_ms:7.2f} ms  IQR {iqr(r.times_ms):6.2f}  "
                f"{'OK' if r.ok else 'WRONG'}  {phases}",
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
    from partui.profiles import datasets
    from partui.profiles.trainer import TrainConfig, Trainer

    data = datasets.builtin_letters(train_size, test_size, 0)
    runs = {}
    for update, combine, executor in (
        ("sync", "reduce", "threads"),
        ("sync", "locked", "threads"),
        ("hogwild", "reduce", "threads"),
        ("hogwild", "reduce", "processes"),
    ):
        cfg = TrainConfig(
            epochs=epochs,
            workers=2,
            executor=executor,
            update=update,
            combine=combine,
            train_size=train_size,
            test_size=test_size,
        )
        r = Trainer(cfg, data).run()
        name = f"{update}{'/' + combine if update == 'sync' else ''} {executor}"
        runs[name] = r
        ips = np.median([e.images_per_s for e in r.epochs])
        print(
            f"  {name:<22} images/s {ips:7.0f}  test accuracy after {epochs} epochs "
            f"{100 * r.test_accuracy:5.1f}%  in {r.epochs[-1].elapsed_s:5.1f} s  "
            "(per epoch: "
            + ", ".join(f"{100 * e.test_accuracy:.1f}%@{e.elapsed_s:.0f}s" for e in r.epochs)
            + ")",
            flush=True,
        )
    budget = min(r.epochs[-1].elapsed_s for r in runs.values())
    print(
        f"  at the same wall time ({budget:.1f} s, the fastest run's total): accuracy at the last "
        f"epoch ended by then:"
    )
    out = {}
    for name, r in runs.items():
        done = [e for e in r.epochs if e.elapsed_s <= budget + 1e-9]
        acc = done[-1].test_accuracy if done else float("nan")
        print(f"    {name:<22} {100 * acc:5.1f}%  ({len(done)} epochs)")
        out[name] = {
            "images_per_s": float(np.median([e.images_per_s for e in r.epochs])),
            "accuracy": r.test_accuracy,
            "accuracy_at_budget": acc,
            "elapsed_s": r.epochs[-1].elapsed_s,
        }
    return out


def user_run(args_extra) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "train.json"
        cmd = [
            sys.executable,
            "-m",
            "partui.tui.cli",
            "train",
            "--epochs",
            "3",
            "--json",
            "--out",
            str(out),
            *args_extra,
        ]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
        stdout, stderr = proc.communicate()
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
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--train-size", type=int, default=6000)
    p.add_argument("--test-size", type=int, default=1000)
    p.add_argument("--skip", default="", help="comma list of parts to skip: step,updates,user")
    p.add_argument("--json", metavar="FILE", help="also write the figures here")
    a = p.parse_args()
    skip = set(filter(None, a.skip.split(",")))
    out = {"load_before": load(), "cpus": psutil.cpu_count()}
    print(f"load average {out['load_before']}  ({out['cpus']} logical CPUs)")
    if "step" not in skip:
        print(f"1. training step vs forward, batch 64, {a.repeats} repeats after 2 warm-ups")
        out["step"] = step_vs_forward(a.repeats)
        print(f"   load average {load()}")
    if "updates" not in skip:
        print(
            f"2. sync vs locked vs Hogwild! at 2 workers: "
            f"{a.epochs} epochs of {a.train_size} images"
        )
        out["updates"] = compare_updates(a.epochs, a.train_size, a.test_size)
        print(f"   load average {load()}")
    if "user" not in skip:
        print("3. as a user runs it")
        out["user"] = user_run([])
        print(f"   load average {load()}")
    out["load_after"] = load()
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
