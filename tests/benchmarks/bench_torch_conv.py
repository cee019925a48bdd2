"""conv2 at batch 64: PyTorch's CPU conv2d on 1 and 2 threads beside partui on 1 and 2 workers.

PyTorch is not a dependency of partui: it runs in a child process started with the
interpreter given by --torch-python (a throwaway environment that has torch, for instance
`python -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch`), by default this
interpreter. When that interpreter cannot import torch, the script says so and stops.

partui runs as `partui bench` runs a configuration (the kernels' choices tuned for this CPU,
then the engine: warm-ups, timed repeats, verified against the float64 reference): one
worker (strategy none, inline), and two workers cut by samples on `threads` and on
`native-region`. The two sides take turns in
interleaved rounds, so a busy moment on this machine slows both; each line is the median of
its rounds' medians, and each ratio the median of the per-round ratios [their range].
Between turns the script waits a moment, so that threads a side leaves spinning do not take
the other side's core. PyTorch runs twice, in two processes: with its OpenMP threads' default
wait (they spin) and with OMP_WAIT_POLICY=PASSIVE (they sleep, as the native region's do);
partui is compared with the faster. Prints figures; asserts nothing.

    python tests/benchmarks/bench_torch_conv.py --torch-python /tmp/torchvenv/bin/python \\
        [--rounds 7] [--repeats 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SETTLE_S = 0.2  # pause between the two sides' turns
BATCH = 64


def child() -> int:
    """The PyTorch side: answers one JSON request per line with the repeats' times (ms).
    Imports only torch and the standard library (its environment need not have partui)."""
    import torch

    print(json.dumps({"torch": torch.__version__}), flush=True)
    gen = torch.Generator().manual_seed(0)
    shapes = None
    for line in sys.stdin:
        req = json.loads(line)
        if shapes != req["shapes"]:
            shapes = req["shapes"]
            (n, c, h, w), oc = shapes
            x = torch.randn(n, c, h, w, generator=gen)
            wt = torch.randn(oc, c, 3, 3, generator=gen) * (2.0 / (9 * c)) ** 0.5
            b = torch.zeros(oc)
        torch.set_num_threads(req["threads"])
        times = []
        with torch.inference_mode():
            for _ in range(req["warmup"]):
                torch.nn.functional.conv2d(x, wt, b)
            for _ in range(req["repeats"]):
                t0 = time.perf_counter_ns()
                torch.nn.functional.conv2d(x, wt, b)
                times.append((time.perf_counter_ns() - t0) / 1e6)
        print(json.dumps({"times_ms": times}), flush=True)
    return 0


class TorchSide:
    def __init__(self, python: str, env: dict[str, str] | None = None):
        self.proc = subprocess.Popen(
            [python, os.path.abspath(__file__), "--child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        hello = self.proc.stdout.readline() if self.proc.stdout else ""
        self.version = json.loads(hello)["torch"] if hello else None

    def times(self, shapes, threads: int, repeats: int, warmup: int) -> list[float]:
        assert self.proc.stdin and self.proc.stdout
        req = {"shapes": shapes, "threads": threads, "repeats": repeats, "warmup": warmup}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())["times_ms"]

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


def torch_version(python: str) -> str | None:
    """torch's version as `python` imports it, or None when it cannot."""
    try:
        done = subprocess.run(
            [python, "-c", "import torch; print(torch.__version__)"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--torch-python", default=sys.executable)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child()
    version = torch_version(args.torch_python)
    if version is None:
        print(
            f"skipped: {args.torch_python} cannot import torch. PyTorch is not a dependency of "
            "partui; install it in a throwaway environment and pass its interpreter with "
            "--torch-python."
        )
        return 0

    from partui.kernels.model.layers import LAYERS
    from partui.profiles.bench.autotune import ensure
    from partui.profiles.records.config import RunConfig
    from partui.profiles.run.engine import Engine

    # the kernels' choices for this CPU, as `partui bench` takes them (tuned on first use)
    tuned = ensure(progress=lambda text: print(text, file=sys.stderr, flush=True))

    layer = LAYERS["conv2"]
    shapes = [[BATCH, *layer.in_shape], layer.out_shape[0]]
    flops = layer.flops(BATCH)
    partui_configs = {
        "partui, 1 worker (none, inline)": ("none", "inline", 1),
        "partui, 2 workers (batch, threads)": ("batch", "threads", 2),
        "partui, 2 workers (batch, native-region)": ("batch", "native-region", 2),
    }
    # PyTorch's OpenMP threads spin while they wait by default: on a busy machine a spinning
    # thread takes the core its partner needs. The native region sleeps (PASSIVE), so PyTorch
    # is measured both ways, each in its own process, and partui compared with the faster.
    policies = {"": {}, ", passive wait": {"OMP_WAIT_POLICY": "PASSIVE"}}
    torch_rows = {
        f"PyTorch conv2d, {t} thread{'s' * (t > 1)}{label}": (label, t)
        for label in policies
        for t in (1, 2)
    }
    rounds: dict[str, list[float]] = {k: [] for k in (*partui_configs, *torch_rows)}
    errors: dict[str, float] = {}
    sides = {label: TorchSide(args.torch_python, env) for label, env in policies.items()}
    side = sides[""]
    try:
        with Engine(sample_hz=0) as engine:

            def partui_turn() -> None:
                for name, (strategy, executor, workers) in partui_configs.items():
                    cfg = RunConfig(
                        "conv2",
                        strategy=strategy,
                        kernel="vectorized",
                        executor=executor,
                        workers=workers,
                        batch=BATCH,
                        repeats=args.repeats,
                        warmup=args.warmup,
                    )
                    r = engine.run(cfg)
                    if not r.ok:
                        raise SystemExit(f"{name}: {r.error}")
                    errors[name] = r.max_abs_error
                    rounds[name].append(statistics.median(r.times_ms))

            def torch_turn() -> None:
                for name, (label, threads) in torch_rows.items():
                    t = sides[label].times(shapes, threads, args.repeats, args.warmup)
                    rounds[name].append(statistics.median(t))
                    time.sleep(SETTLE_S)

            for r in range(args.rounds):
                turns = (partui_turn, torch_turn) if r % 2 == 0 else (torch_turn, partui_turn)
                for turn in turns:
                    turn()
                    time.sleep(SETTLE_S)
    finally:
        for each in sides.values():
            each.close()
    load = os.getloadavg()
    print(
        f"conv2, batch {BATCH} ({flops / 1e6:.0f} MFLOP): {args.rounds} interleaved rounds x "
        f"{args.repeats} repeats; torch {side.version}; load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    shape = f"conv {layer.in_shape[0]}x{layer.in_shape[1]}x{layer.in_shape[2]}->{shapes[1]}"
    knobs = (tuned or {}).get("choices", {}).get(shape) if tuned else None
    print(f"  partui's {shape} knobs: {knobs or 'the built-in rules'}")
    print("  median of the rounds' medians (min-max of the rounds), GFLOP/s")
    for name, per in rounds.items():
        med = statistics.median(per)
        err = f"  max abs error {errors[name]:.1e}" if name in errors else ""
        print(
            f"  {name:42s} {med:7.3f} ms ({min(per):.3f}-{max(per):.3f})  "
            f"{flops / (med * 1e6):6.1f}{err}"
        )
    print(
        "  partui time / PyTorch time, median of the per-round ratios [range] (< 1: partui faster)"
    )

    def faster(threads: int) -> str:
        names = [n for n, (_, t) in torch_rows.items() if t == threads]
        return min(names, key=lambda n: statistics.median(rounds[n]))

    pairs = [
        ("partui, 1 worker (none, inline)", faster(1)),
        ("partui, 2 workers (batch, threads)", faster(2)),
        ("partui, 2 workers (batch, native-region)", faster(2)),
    ]
    for ours, theirs in pairs:
        ratios = [a / b for a, b in zip(rounds[ours], rounds[theirs])]
        print(
            f"  {ours:42s} / {theirs:41s} {statistics.median(ratios):5.2f} "
            f"[{min(ratios):.2f}-{max(ratios):.2f}]"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
