"""Engine memory: how much running every kind of configuration once costs, and what a second
time adds (a leak grows on every pass; what is loaded on first use grows once).

In one Engine, as the dashboard's engine process holds it: every layer under every valid
(strategy, kernel, executor) at 2 workers (inline at 1), a tiny batch and one repeat (the
kernels' compiled code depends on the arrays' types, not their sizes), then all of it again.
Prints the engine process's anonymous memory (heap, compiled code, arrays) and its mapped
files (shared libraries) after each layer of the first pass and after each pass, with the
Python objects' allocated blocks (flat while memory moves: the allocators' high-water mark,
not something kept) and the executors kept warm. Dask is left out (an optional extra, its own
processes); the processes executor's kernels run in its workers. Not a test: it prints
figures.

    python tests/benchmarks/engine_memory.py [--passes 2] [--batch 4]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the census helper
from process_census import memory_split  # noqa: E402


def memory_mb() -> tuple[float, float]:
    """(anonymous, files) resident MB of this process."""
    files, anon = memory_split(os.getpid())
    return anon, files


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    args = ap.parse_args()

    from partui.kernels.model.layers import LAYERS
    from partui.kernels.plan.axes import valid_combinations
    from partui.profiles.records.config import RunConfig
    from partui.profiles.run.engine import Engine

    anon, files = memory_mb()
    print(
        f"start: anonymous {anon:.1f} MB, files {files:.1f} MB; "
        f"load average {open('/proc/loadavg').read().split()[:3]}",
        flush=True,
    )
    with Engine(sample_hz=0) as engine:
        for n in range(1, args.passes + 1):
            t0, runs, failed = time.monotonic(), 0, 0
            for layer in LAYERS.values():
                for strategy, kernel, executor in valid_combinations(layer):
                    if executor == "dask":
                        continue
                    cfg = RunConfig(
                        layer.name,
                        strategy=strategy,
                        kernel=kernel,
                        executor=executor,
                        workers=1 if executor == "inline" else 2,
                        batch=args.batch,
                        repeats=1,
                        warmup=0,
                    )
                    result = engine.run(cfg)
                    runs += 1
                    failed += not result.ok
                if n == 1:
                    anon, files = memory_mb()
                    print(
                        f"  after {layer.name:<10} anonymous {anon:7.1f} MB, files {files:6.1f} MB",
                        flush=True,
                    )
            anon, files = memory_mb()
            blocks = sys.getallocatedblocks()
            kept = ", ".join(f"{ex.name} x{ex.workers}" for ex in engine.kept)
            print(
                f"pass {n}: {runs} runs ({failed} wrong) in {time.monotonic() - t0:.0f} s; "
                f"anonymous {anon:.1f} MB, files {files:.1f} MB, Python blocks {blocks}; "
                f"kept warm: {kept}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
