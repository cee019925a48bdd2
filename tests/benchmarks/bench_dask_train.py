"""`partui train` on Dask against threads and processes, and the two Dask combines, back to back.

Each round trains one epoch of the built-in letters (batch 64, 2 workers) with each of:
threads, processes, dask --combine reduce (a tree of adds on the workers) and dask --combine
gather (every gradient fetched here and summed here), in that order; rounds interleave the
four. Dask runs share one LocalCluster, started once (its start-up, and each run's set-up,
are reported apart, as `partui train` reports them). Printed per configuration: images/s of
the epoch (median and min-max over rounds), and for dask the step time, the gradient
exchange (last shard gradient ready to every worker updated) and the gradient bytes per
step between workers, to partui and from partui (medians over the steps).

`--real` then runs the command a user runs, `partui train --executor dask --workers 2` with
its defaults (12,000 images, 3 epochs), and prints each epoch's loss, accuracy and images/s.

Prints figures (and the load average before and after); asserts nothing.

    python tests/benchmarks/bench_dask_train.py [--rounds 3] [--train-size 4096] [--real]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import replace

from partui.kernels.warmup import compile_kernels
from partui.profiles.executors.dask_cluster import DaskExecutor
from partui.profiles.records.train_config import TrainConfig
from partui.profiles.train.datasets import builtin_letters
from partui.profiles.train.trainer import Trainer


def load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--train-size", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--real", action="store_true", help="also the default partui train run")
    args = ap.parse_args()
    compile_kernels(["network"])
    data = builtin_letters(args.train_size, 256, 0)
    base = TrainConfig(
        epochs=1, batch=args.batch, workers=2, train_size=args.train_size, test_size=256
    )
    configs = {
        "threads": base,
        "processes": replace(base, executor="processes"),
        "dask reduce (tree)": replace(base, executor="dask", combine="reduce"),
        "dask gather": replace(base, executor="dask", combine="gather"),
    }
    print(f"load before: {load()}  ({os.cpu_count()} CPUs)")
    ex = DaskExecutor(2)
    startup = ex.start()
    print(f"LocalCluster of 2 workers started in {startup:.0f} ms (not in the figures)")
    rates: dict[str, list[float]] = {k: [] for k in configs}
    dask: dict[str, list[dict]] = {k: [] for k in configs}
    try:
        for r in range(args.rounds):
            for key, cfg in configs.items():
                tr = Trainer(cfg, data, executor=ex if cfg.executor == "dask" else None)
                res = tr.run()
                rates[key].append(res.epochs[-1].images_per_s)
                if res.dask:
                    dask[key].append(res.dask["training"])
            print(f"round {r + 1}/{args.rounds} done, load {load()}", flush=True)
    finally:
        ex.close()
    mib = 2**20
    print(f"\none epoch of {args.train_size} images, batch {args.batch}, 2 workers:")
    print(
        f"{'configuration':<20} {'images/s median (min-max)':>28}  step ms  exchange ms  MiB/step"
    )
    for key, rs in rates.items():
        line = f"{key:<20} {statistics.median(rs):>10.0f} ({min(rs):.0f}-{max(rs):.0f})".ljust(50)
        d = dask[key]
        if d:

            def med(f, d=d):
                return statistics.median(x[f] for x in d)

            line += (
                f"{med('step_ms'):>7.1f}  {med('exchange_ms'):>11.1f}  "
                f"between {med('gradient_bytes_between_workers_per_step') / mib:.2f}, "
                f"to partui {med('gradient_bytes_to_partui_per_step') / mib:.2f}, "
                f"from partui {med('gradient_bytes_from_partui_per_step') / mib:.2f}"
            )
            if "gather_ms" in d[0]:
                line += (
                    f"  (gather {med('gather_ms'):.1f} ms, sum {med('sum_ms'):.1f} ms, "
                    f"send back {med('scatter_ms'):.1f} ms)"
                )
            line += f"  set-up {med('setup_ms'):.0f} ms"
        print(line)
    print(f"load after: {load()}")
    if args.real:
        real_run()


def real_run() -> None:
    """The default `partui train --executor dask --workers 2`, its output to files."""
    with tempfile.TemporaryDirectory(prefix="bench-dask-train-") as tmp:
        out, err = os.path.join(tmp, "out.json"), os.path.join(tmp, "err.txt")
        print(f"\npartui train --executor dask --workers 2 (defaults), load {load()}", flush=True)
        with open(out, "w") as o, open(err, "w") as e:
            code = subprocess.call(
                [sys.executable, "-m", "partui", "train", "--executor", "dask", "--workers", "2",
                 "--json", "--out", os.path.join(tmp, "t.json")],
                stdout=o, stderr=e, cwd=tmp,
            )  # fmt: skip
        if code != 0:
            print(f"exit {code}: {open(err).read()[-500:]}")
            return
        res = json.load(open(out))
        for ep in res["epochs"]:
            print(
                f"epoch {ep['epoch']}: loss {ep['train_loss']:.4f}, test accuracy "
                f"{100 * ep['test_accuracy']:.1f}%, {ep['images_per_s']:.0f} images/s"
            )
        t = res["dask"]["training"]
        print(
            f"step {t['step_ms']:.1f} ms, exchange {t['exchange_ms']:.1f} ms, "
            f"{t['gradient_bytes_between_workers_per_step'] / 2**20:.2f} MiB between workers "
            f"per step; set-up {t['setup_ms']:.0f} ms; load after {load()}"
        )


if __name__ == "__main__":
    main()
