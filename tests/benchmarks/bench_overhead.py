"""Overhead benchmark: does measuring move what it measures?

Compares a bare timing loop around the kernel (perf_counter_ns, nothing else) with
the engine's instrumented run of the same work on the calling thread (inline executor,
one task: span stamping, events to a consumer, the CPU sampler on its own thread),
and with the engine without the sampler. Short blocks of the three alternate (ABC CBA)
so drift on this shared machine hits all alike; each round gives a ratio of medians,
and the figures are the median and min-max of those ratios over rounds. "spans alone"
is what the timeline shows (the task's own stamps); "wall - span" is what the engine's
repeat adds around the task: dispatch, the span object, the event.
Target: within 2% for tasks of 1 ms or more. On a shared machine the per-case ratios
carry a few % of noise either way, so the benchmark also measures the fixed cost per
repeat directly on a tiny task, where nothing hides it.

Also the sampler's cost: CPU time per sample (measured by the sampler itself) during
the instrumented runs, and alone for a few seconds watching two busy worker threads:
its achieved rate and the share of one core it takes.

And the executors' fixed cost per repeat at W workers (`--executors`): W empty tasks
handed out and collected, `threads` (parked workers, the caller runs share 0) and
`threads-dynamic` (a pool, a future per task) alternating round by round; per round the
median of many repeats, shown as the median over rounds with the rounds' min-max, and
the repeats' quartiles pooled over rounds. Target: <= 20 us at 2 workers for `threads`.

    python tests/benchmarks/bench_overhead.py [--rounds 5] [--pairs 40] [--block 5] [--cases ...]
    python tests/benchmarks/bench_overhead.py --executors [--workers 1,2,4] [--rounds 5]

Prints figures; asserts nothing (timings here are noisy).
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import numpy as np

from partui.kernels.forward.compute import run_task
from partui.kernels.model.layers import get_layer, make_input, make_params
from partui.kernels.plan import strategies
from partui.kernels.runtime.scratch import Scratch
from partui.profiles.bench.overhead import OVERHEAD_EXECUTORS, empty_repeats_us, summary
from partui.profiles.records.config import RunConfig
from partui.profiles.records.events import EventLog
from partui.profiles.run.engine import Engine
from partui.profiles.run.sampler import SAMPLE_HZ, CpuSampler
from partui.profiles.system import blas

CASES = {  # name: (layer, batch): tasks from ~1 ms up
    "conv2 b=16": ("conv2", 16),
    "conv2 b=64": ("conv2", 64),
    "conv1 b=64": ("conv1", 64),
    "linear1 b=1024": ("linear1", 1024),
}


class Bare:
    """The kernel alone, one task covering the layer, timed with nothing around it."""

    def __init__(self, layer_name: str, batch: int):
        self.layer = get_layer(layer_name)
        self.arrays = {
            "x": make_input(self.layer, batch, 0),
            "out": np.empty(self.layer.out_array_shape(batch), dtype=np.float32),
            **make_params(self.layer, 0),
        }
        (self.task,) = strategies.plan(self.layer, "none", batch, 1).phases[0]
        self.scratch = Scratch()

    def times(self, repeats: int, warmup: int = 1) -> list[float]:
        out = []
        with blas.limit(1):  # as the engine runs an inline task
            for i in range(warmup + repeats):
                t0 = time.perf_counter_ns()
                run_task(self.layer, "vectorized", self.arrays, self.task, self.scratch)
                if i >= warmup:
                    out.append((time.perf_counter_ns() - t0) / 1e6)
        return out


def bare_times(layer_name: str, batch: int, repeats: int) -> list[float]:
    return Bare(layer_name, batch).times(repeats)


def fixed_overhead(engine: Engine, rounds: int, repeats: int = 200) -> list[float]:
    """Microseconds the engine adds to each repeat, on a ~6 us task where nothing hides it."""
    cfg = RunConfig(
        "logsoftmax", strategy="none", executor="inline", workers=1, batch=1, repeats=repeats
    )
    out = []
    for _ in range(rounds):
        bare = statistics.median(bare_times("logsoftmax", 1, repeats))
        out.append((engine.run(cfg, emit=EventLog()).median_ms - bare) * 1000)
    return out


def sampler_cost(seconds: float, workers: int = 2) -> None:
    """The sampler alone for a while, watching `workers` busy numpy threads."""
    stop, tids = threading.Event(), {}

    def busy(i):
        tids[i] = threading.get_native_id()
        a = np.random.default_rng(i).random((256, 256), dtype=np.float32)
        while not stop.is_set():
            a @ a

    threads = [threading.Thread(target=busy, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    while len(tids) < workers:
        time.sleep(0.001)
    with blas.limit(1):
        with CpuSampler(tids) as sampler:
            time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    samples = sampler.samples
    costs = [s.sampler_cost_us for s in samples]
    rate = (len(samples) - 1) / ((samples[-1].t_ns - samples[0].t_ns) / 1e9)
    med = statistics.median(costs)
    print(
        f"sampler alone, {workers} busy worker threads, {seconds:.0f} s: {len(samples)} samples "
        f"at {rate:.1f} Hz, CPU per sample median {med:.0f} us (min {min(costs):.0f}, "
        f"p90 {np.percentile(costs, 90):.0f}) -> {100 * med * rate / 1e6:.2f}% of one core"
    )


def _load() -> str:
    import os

    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def executor_overhead(workers: list[int], rounds: int, repeats: int) -> None:
    """Fixed cost per repeat with empty tasks, per executor and worker count."""
    print(
        f"fixed cost of one repeat with empty tasks: {rounds} rounds x {repeats} repeats per "
        f"executor and worker count, executors alternating; load average {_load()}"
    )
    print(
        f"{'executor':<16} {'workers':>7} {'median us':>10} {'rounds min-max':>16} "
        f"{'q1-q3 us':>14} {'min us':>8}"
    )
    from partui.profiles.executors.registry import executor_class

    for w in workers:
        # native-region runs no more workers than numba has threads
        names = tuple(e for e in OVERHEAD_EXECUTORS if executor_class(e).refusal(w) is None)
        medians: dict[str, list[float]] = {e: [] for e in names}
        pooled: dict[str, list[float]] = {e: [] for e in names}
        for r in range(rounds):
            order = names if r % 2 == 0 else names[::-1]
            for e in order:
                values = empty_repeats_us(e, w, repeats=repeats, warmup=max(10, repeats // 10))
                medians[e].append(statistics.median(values))
                pooled[e] += values
        for e in names:
            s = summary(pooled[e])
            m = medians[e]
            spread = f"{min(m):.1f}-{max(m):.1f}"
            quartiles = f"{s['q1_us']:.1f}-{s['q3_us']:.1f}"
            print(
                f"{e:<16} {w:>7} {statistics.median(m):>10.1f} {spread:>16} {quartiles:>14} "
                f"{s['min_us']:>8.1f}"
            )
    print(f"load average after: {_load()}")


def pct(ratios: list[float]) -> str:
    return (
        f"{100 * (statistics.median(ratios) - 1):+.1f}% "
        f"({100 * (min(ratios) - 1):+.1f}..{100 * (max(ratios) - 1):+.1f})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument(
        "--pairs",
        type=int,
        default=40,
        help="bare / instrumented / unsampled blocks per round, order alternating",
    )
    ap.add_argument("--block", type=int, default=5, help="timed repeats per block")
    ap.add_argument("--sampler-seconds", type=float, default=3.0)
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated: " + ", ".join(CASES))
    ap.add_argument(
        "--executors", action="store_true", help="only the executors' fixed cost per repeat"
    )
    ap.add_argument("--workers", default="1,2,4", help="worker counts for --executors")
    ap.add_argument("--repeats", type=int, default=2000, help="repeats per round (--executors)")
    args = ap.parse_args()
    if args.executors:
        executor_overhead([int(w) for w in args.workers.split(",")], args.rounds, args.repeats)
        return
    print(
        f"{args.rounds} rounds x {args.pairs} interleaved blocks of {args.block} repeats "
        f"(+1 warm-up each); per round the ratio of medians to the bare loop; shown: median "
        f"(min..max) over rounds; sampler at {SAMPLE_HZ} Hz"
    )
    print(
        f"{'case':<15} {'bare ms':>8} {'instrumented':>20} {'no sampler':>20} "
        f"{'spans alone':>20} {'wall - span':>12}"
    )
    costs = []
    with Engine() as sampled, Engine(sample_hz=0) as unsampled:
        for name in args.cases.split(","):
            layer, batch = CASES[name]
            bare = Bare(layer, batch)
            cfg = RunConfig(
                layer,
                strategy="none",
                executor="inline",
                workers=1,
                batch=batch,
                repeats=args.block,
            )
            r_inst, r_plain, r_span, gaps, bares = [], [], [], [], []
            for _ in range(args.rounds):
                b, inst, plain, span = [], [], [], []
                for i in range(args.pairs):
                    order = (0, 1, 2) if i % 2 == 0 else (2, 1, 0)
                    for which in order:
                        if which == 0:
                            b += bare.times(args.block)
                        elif which == 1:
                            r = sampled.run(cfg, emit=EventLog())  # keeps every event
                            inst += r.times_ms
                            span += [s.duration_ns / 1e6 for s in r.spans]
                            costs += [s.sampler_cost_us for s in r.cpu_samples]
                        else:
                            plain += unsampled.run(cfg, emit=EventLog()).times_ms
                mb = statistics.median(b)
                bares.append(mb)
                r_inst.append(statistics.median(inst) / mb)
                r_plain.append(statistics.median(plain) / mb)
                r_span.append(statistics.median(span) / mb)
                gaps.append((statistics.median(inst) - statistics.median(span)) * 1000)
            print(
                f"{name:<15} {statistics.median(bares):>8.3f} {pct(r_inst):>20} "
                f"{pct(r_plain):>20} {pct(r_span):>20} {statistics.median(gaps):>9.0f} us"
            )
        fixed = fixed_overhead(sampled, args.rounds)
        print(
            f"fixed cost the instrumented engine adds per repeat on a ~6 us task (logsoftmax "
            f"b=1, 200 repeats): median {statistics.median(fixed):.1f} us "
            f"({min(fixed):.1f}..{max(fixed):.1f})"
        )
    if costs:
        print(
            f"sampler during the instrumented runs: {len(costs)} samples, CPU per sample "
            f"median {statistics.median(costs):.0f} us (p90 {np.percentile(costs, 90):.0f} us)"
        )
    sampler_cost(args.sampler_seconds)


if __name__ == "__main__":
    main()
