"""What the parked `threads` executor buys over the `threads-dynamic` pool, in one run.

For each case (layer, batch) the best single-task time (inline) and the 2-worker batch
split on `threads` and on `threads-dynamic` are measured in interleaved rounds (the order
alternates), so a busy moment on this shared machine hits all three alike. Per
configuration: the median over all rounds' repeats and the min-max of the per-round
medians; then the speedups over inline, and for `threads` the fixed cost the run saw per
repeat (wall minus the busiest worker's tasks) and the wake-up latency of worker 1.

Where the 2-worker time goes, from the same runs' spans: "work x" is all the workers' task
time in a repeat over inline's (what splitting the work added: smaller GEMMs, two cores on
one memory system), "imbal" the busiest worker's time over the mean. The 2-worker wall is
(inline work x work / 2) x imbal + fixed, so these three say what stops 2.0x.

    python tests/benchmarks/bench_executors.py [--rounds 5] [--repeats 20] [--cases conv2:16,...]

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics

from partui.profiles.bench.overhead import time_split, wake_us
from partui.profiles.records.config import RunConfig
from partui.profiles.run.engine import Engine

CASES = "conv2:16,conv3:16,network:16,conv2:64,conv3:64,network:64"
CONFIGS = (("none", "inline", 1), ("batch", "threads", 2), ("batch", "threads-dynamic", 2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=20, help="timed repeats per run")
    ap.add_argument("--cases", default=CASES, help="layer:batch, comma-separated")
    args = ap.parse_args()
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(
        f"{args.rounds} interleaved rounds x {args.repeats} repeats (+3 warm-up) per "
        f"configuration; load average {load}"
    )
    print(
        f"{'case':<11} {'configuration':<26} {'median ms':>9} {'rounds min-max':>15} "
        f"{'vs inline':>9} {'work x':>6} {'imbal':>5} {'fixed us':>8} {'wake us':>8}"
    )
    with Engine(sample_hz=0) as engine:
        for case in args.cases.split(","):
            layer, batch = case.split(":")
            times: dict[tuple, list[float]] = {c: [] for c in CONFIGS}
            medians: dict[tuple, list[float]] = {c: [] for c in CONFIGS}
            fixed: dict[tuple, list[float]] = {c: [] for c in CONFIGS}
            work: dict[tuple, list[float]] = {c: [] for c in CONFIGS}
            imbal: dict[tuple, list[float]] = {c: [] for c in CONFIGS}
            wakes: dict[tuple, list[float]] = {c: [] for c in CONFIGS}
            for r in range(args.rounds):
                for c in CONFIGS if r % 2 == 0 else CONFIGS[::-1]:
                    strategy, executor, workers = c
                    cfg = RunConfig(
                        layer,
                        strategy=strategy,
                        executor=executor,
                        workers=workers,
                        batch=int(batch),
                        repeats=args.repeats,
                        warmup=3,
                    )
                    res = engine.run(cfg)
                    if not res.ok:
                        raise SystemExit(f"{cfg.label()}: {res.error}")
                    times[c] += res.times_ms
                    medians[c].append(res.median_ms)
                    split = time_split(res.times_ms, res.spans)
                    if split is not None:
                        work[c].append(split.work_ms)
                        imbal[c].append(split.imbalance)
                        if workers > 1:
                            fixed[c].append(split.fixed_us)
                    w = wake_us(res.spans)
                    if w is not None:
                        wakes[c].append(w)
            base = statistics.median(times[CONFIGS[0]])
            base_work = statistics.median(work[CONFIGS[0]]) if work[CONFIGS[0]] else None
            for c in CONFIGS:
                m = statistics.median(times[c])
                spread = f"{min(medians[c]):.3f}-{max(medians[c]):.3f}"
                f = f"{statistics.median(fixed[c]):.0f}" if fixed[c] else "-"
                w = f"{statistics.median(wakes[c]):.0f}" if wakes[c] else "-"
                x = (
                    f"{statistics.median(work[c]) / base_work:.2f}"
                    if base_work and work[c]
                    else "-"
                )
                b = f"{statistics.median(imbal[c]):.2f}" if imbal[c] else "-"
                print(
                    f"{case:<11} {f'{c[0]}/{c[1]} w{c[2]}':<26} {m:>9.3f} {spread:>15} "
                    f"{base / m:>8.2f}x {x:>6} {b:>5} {f:>8} {w:>8}"
                )
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
