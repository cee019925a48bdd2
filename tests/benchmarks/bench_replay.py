"""Replay benchmark: what a ← / → key costs on a saved run, timeline alone against every
chart following.

Opens a snapshot headless (Textual's Pilot, 120x40) and steps through the repeats of its
last run, alternating in rounds: the timeline alone redrawn (what `,` `.` cost before the
other charts followed), the replay key (the timeline, the header's words; a held key costs
this) and the replay key with every chart following (timeline, CPU, speedup, run times:
what its timer adds once the keys are quiet). A step is timed from the key's handler to
the frame painted (Pilot's pause: the message queue empty and the screen refreshed);
"idle" is that pause with nothing changed.
Prints the median over rounds of each round's median, and the rounds' min-max; asserts
nothing (this machine is shared and noisy; the load average is printed).

    python tests/benchmarks/bench_replay.py SNAPSHOT.json [--rounds 5] [--steps 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from pathlib import Path

from partui.profiles.service.engine import EngineThread
from partui.tui.dashboard.app import PartuiApp


async def measure(path: Path, rounds: int, steps: int) -> dict[str, list[float]]:
    app = PartuiApp(
        snapshot_dir=path.parent, open_snapshot=path, engine_factory=EngineThread, live_loop=False
    )
    out: dict[str, list[float]] = {}
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        tab = app.profile
        timeline = app.query_one("#timeline")

        def timeline_alone() -> None:
            tab.shown.step_repeat(1)
            timeline.update_from(tab.shown)

        def every_chart() -> None:
            tab.action_replay(1)
            tab.follow_pick()  # what the timer does once the keys are quiet

        cases = {
            "idle": lambda: None,
            "timeline alone": timeline_alone,
            "replay key": lambda: tab.action_replay(1),
            "every chart": every_chart,
        }
        for r in range(rounds):
            order = list(cases) if r % 2 == 0 else list(reversed(cases))
            for name in order:
                times = []
                for _ in range(steps):
                    t0 = time.perf_counter()
                    cases[name]()
                    await pilot.pause()
                    times.append((time.perf_counter() - t0) * 1e3)
                out.setdefault(name, []).append(statistics.median(times))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("snapshot", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    figures = asyncio.run(measure(args.snapshot, args.rounds, args.steps))
    for name, medians in figures.items():
        print(
            f"{name:>15}: median {statistics.median(medians):6.1f} ms per step "
            f"(rounds {min(medians):.1f}-{max(medians):.1f}, {args.steps} steps a round)"
        )
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
