"""How often one configuration is called significantly different from itself, on this machine
as it is now: the false verdicts the noise floor is there to stop.

One configuration runs `--runs` times (`--repeats` timed repeats each). Its repeats are then
split into two "snapshots" of `--runs-per-side` runs each, three ways:
- back to back: runs 1..k against runs k+1..2k (drift between the two weighs fully),
- interleaved: odd runs against even runs (drift weighs on both alike),
- shuffled: runs drawn at random (no drift at all: what the tests' error rates promise).
For each way, the share of splits `significance.contrast` calls significant as `partui
compare` does (the noise floor and the runs' drift), with the floor alone, and with neither
(floor 1), and the count of each verdict as `compare` gives it. Then a known difference:
the same configuration at a quarter of the batch, interleaved, should always be significant.

    python tests/benchmarks/bench_verdicts.py [--layer conv2] [--batch 64] [--runs 40]

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
from collections import Counter

import numpy as np

from partui.profiles.records.config import RunConfig
from partui.profiles.records.significance import NOISE_FLOOR, contrast, run_drift
from partui.profiles.run.engine import Engine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layer", default="conv2")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--runs", type=int, default=40, help="runs of the configuration")
    ap.add_argument("--repeats", type=int, default=6, help="timed repeats per run")
    ap.add_argument("--runs-per-side", type=int, default=4, help="runs in each snapshot")
    ap.add_argument("--splits", type=int, default=200, help="random splits (shuffled)")
    args = ap.parse_args()

    def config(batch: int) -> RunConfig:
        return RunConfig(
            args.layer, "none", executor="inline", workers=1, batch=batch, repeats=args.repeats
        )

    before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    runs, quarter = [], []
    with Engine() as engine:
        for i in range(args.runs):
            runs.append(engine.run(config(args.batch)).times_ms)
            if i % 4 == 0:  # interleaved with the others, a quarter as often
                quarter.append(engine.run(config(max(1, args.batch // 4))).times_ms)
    after = " ".join(f"{v:.2f}" for v in os.getloadavg())
    every = np.concatenate(runs)
    print(
        f"{args.layer} batch {args.batch}, none/inline, {args.runs} runs x {args.repeats} "
        f"repeats; load average before {before}, after {after}"
    )
    q = np.percentile(every, [0, 25, 50, 75, 100])
    print("repeats ms: min {:.3g}  q1 {:.3g}  median {:.3g}  q3 {:.3g}  max {:.3g}".format(*q))

    k = args.runs_per_side
    rng = np.random.default_rng(0)

    def joined(indices) -> list[float]:
        return [t for i in indices for t in runs[i]]

    ways = {
        "back to back": [
            (range(s, s + k), range(s + k, s + 2 * k)) for s in range(0, args.runs - 2 * k + 1, k)
        ],
        "interleaved": [
            (range(s, s + 2 * k, 2), range(s + 1, s + 2 * k, 2))
            for s in range(0, args.runs - 2 * k + 1, 2)
        ],
        "shuffled": [
            (p[:k], p[k : 2 * k]) for p in (rng.permutation(args.runs) for _ in range(args.splits))
        ],
    }
    print(f"\n{k} runs ({k * args.repeats} repeats) a side; significant as compare does "
          f"(floor {NOISE_FLOOR:.2f} and drift) / floor alone / neither; verdicts as compare "
          "gives them")  # fmt: skip
    for name, splits in ways.items():
        cases = [(joined(a), joined(b), [runs[i] for i in a], [runs[i] for i in b])
                 for a, b in splits]  # fmt: skip
        compare = [contrast(x, y, drift=run_drift(ra, rb)) for x, y, ra, rb in cases]
        floor = [contrast(x, y) for x, y, _, _ in cases]
        none = [contrast(x, y, noise_floor=1.0) for x, y, _, _ in cases]
        shares = [100 * sum(c.significant for c in cs) / len(cs) for cs in (compare, floor, none)]
        said = Counter(c.verdict for c in compare)
        print(
            f"  {name:<13} {len(splits):>4} splits: "
            + " / ".join(f"{v:5.1f}%" for v in shares)
            + f"   {dict(said)}"
        )
    c = contrast(every, np.concatenate(quarter))
    print(f"\nbatch {max(1, args.batch // 4)} against batch {args.batch}: {c.text()}")


if __name__ == "__main__":
    main()
