"""What the memory-lab experiments share: units, calibration, page filling, notes on noise."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from partui.kernels.lab.buffers import aligned_empty
from partui.profiles.lab.measure import RETAKES, Lab, MemPoint, Sample
from partui.profiles.system.units import KiB, MiB, size_text  # noqa: F401 (the experiments import them from here)

F32 = 4
GOOD_SHARE = 0.85  # below this a thread spent a real part of its time not running
RETAKE_BELOW = 0.9  # native threaded samples whose threads ran less than this are retaken


def ys(samples: list[Sample], to_y: Callable[[Sample], float]) -> tuple[list[float], list[float]]:
    return [to_y(s) for s in samples], [s.cpu_share for s in samples]


def calibrated(lab: Lab, make_jobs: Callable[[int], list], units0: int, target_s: float) -> int:
    """How many units (passes, calls) make one sample last about `target_s`: one untimed
    run of `units0` units (which also warms caches and compiles) scaled to the target."""
    s = lab.sample(make_jobs(units0))
    return max(1, round(units0 * target_s * 1e9 / s.wall_ns))


def filled(lab: Lab, count: int, value: float) -> np.ndarray:
    """A page-aligned float32 array of `count` elements set to `value`, written in pieces so
    that a cancel is seen while the pages are first touched (seconds for hundreds of MiB)."""
    a = aligned_empty(count, np.float32)
    piece = 4 * MiB
    for i in range(0, count, piece):
        lab.check()
        a[i : i + piece] = value
    return a


def retake_note(summary: dict) -> str:
    retaken, disturbed = summary.get("samples_retaken", 0), summary.get("samples_disturbed", 0)
    if not retaken and not disturbed:
        return ""
    text = (
        f"\n{retaken} sample{'s were' if retaken != 1 else ' was'} retaken because a thread "
        f"was off its core more than {1 - RETAKE_BELOW:.0%} of the time (another program "
        f"needed it)"
    )
    if disturbed:
        text += f"; {disturbed} stayed disturbed after {RETAKES} retakes"
    return text + "."


def cache_markers(machine: dict) -> list[tuple[float, str]]:
    return [
        (machine[f"l{k}"], f"L{k} {size_text(machine[f'l{k}'])}")
        for k in (1, 2, 3)
        if machine.get(f"l{k}")
    ]


def share_note(points: list[MemPoint], what: str, cpu_timed: bool = False) -> str:
    low = [(p.cpu_share, p) for p in points if p.cpu_share is not None and p.cpu_share < GOOD_SHARE]
    if not low:
        return ""
    share, worst = min(low, key=lambda sp: sp[0])
    where = f"at {worst.series}, x={worst.x:g}, {what} ran {100 * share:.0f}% of the wall time"
    if cpu_timed:
        return (
            f"\nThe machine was busy ({where}). The times above are the thread's CPU time, "
            f"so waiting for the core is not counted, but another program may have "
            f"disturbed the caches."
        )
    return (
        f"\nCaution: {what} did not run all the time ({where}): another program was "
        f"using a core, so these points are pessimistic."
    )


CPU_TIME_NOTE = (
    "Times are the measuring thread's CPU time (not wall time): on a shared "
    "machine, moments when another program holds the core are not counted."
)
