"""One timed repeat of a run, picked out of its repeats: which one, and how it is said.

A snapshot keeps every timed repeat of a run (its time, its start, its spans); the
dashboard's replay and `partui show --repeat` show one of them at a time. People count
repeats from 1 ("repeat 3 of 7"), the spans from 0: a `RepeatPick` holds the index from 0.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from partui.tui.text.table import short_ms

NAMED = ("fastest", "slowest", "median")  # what `--repeat` takes besides a number


def median_index(times_ms) -> int | None:
    """The repeat whose time is the median (the lower middle one for an even count)."""
    if not times_ms:
        return None
    order = sorted(range(len(times_ms)), key=lambda i: (times_ms[i], i))
    return order[(len(order) - 1) // 2]


def fastest_index(times_ms) -> int | None:
    """The first of the fastest repeats."""
    return min(range(len(times_ms)), key=lambda i: (times_ms[i], i)) if times_ms else None


def slowest_index(times_ms) -> int | None:
    """The first of the slowest repeats."""
    return min(range(len(times_ms)), key=lambda i: (-times_ms[i], i)) if times_ms else None


def named_index(name: str, times_ms) -> int | None:
    """ "fastest", "slowest" or "median" of `times_ms`."""
    return {"fastest": fastest_index, "slowest": slowest_index, "median": median_index}[name](
        times_ms
    )


def own_repeats(result) -> tuple[list[float], list[int]]:
    """The run's own timed repeats: (times in ms, starts in ns, [] when not recorded).

    A pooled live-mode row holds every run's times but only the last run's spans and
    starts, whose repeats are the tail of the times."""
    starts = list(getattr(result, "repeat_start_ns", None) or [])
    times = list(result.times_ms)
    own = times[len(times) - len(starts) :] if 0 < len(starts) <= len(times) else times
    return own, starts if len(starts) == len(own) else []


def parse_repeat(text: str, times_ms) -> int:
    """`--repeat`'s value (a number from 1, or fastest / slowest / median) as an index
    into `times_ms`; ValueError when it is neither, or with what the run "has" when it
    holds no such repeat."""
    word = text.strip().lower()
    n = len(times_ms)
    if not well_formed(word):
        raise ValueError(f"give a repeat number (1..{n}) or one of {', '.join(NAMED)}")
    index = named_index(word, times_ms) if word in NAMED else int(word) - 1
    if index is None or not 0 <= index < n:
        raise ValueError(
            f"has {n} timed repeat{'s' if n != 1 else ''} (1..{n})" if n else "has no timed repeats"
        )
    return index


def well_formed(text: str) -> bool:
    """A number from 1 or one of NAMED (what `--repeat` takes, whatever the run holds)."""
    word = text.strip().lower()
    return word in NAMED or (word.isascii() and word.isdigit())


@dataclass(frozen=True)
class RepeatPick:
    """Timed repeat `repeat` (from 0) of run number `run` (as in the runs table)."""

    run: int
    repeat: int
    times_ms: tuple[float, ...]  # every timed repeat of the run, in order
    start_ns: int | None = None  # its start on the spans' clock, if the run recorded it

    @property
    def count(self) -> int:
        return len(self.times_ms)

    @property
    def wall_ms(self) -> float:
        return self.times_ms[self.repeat]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def tag(self) -> str:
        """ "fastest", "slowest", "median" or "" for this repeat (ties: the first one)."""
        for name in NAMED:
            if named_index(name, self.times_ms) == self.repeat:
                return name
        return ""

    def words(self) -> str:
        """ "repeat 3 of 7, 12.4 ms (median 11.9), the slowest"."""
        text = (
            f"repeat {self.repeat + 1} of {self.count}, {short_ms(self.wall_ms)} ms "
            f"(median {short_ms(self.median_ms)})"
        )
        tag = {"fastest": "the fastest", "slowest": "the slowest", "median": "the median one"}
        return f"{text}, {tag[self.tag]}" if self.tag else text


def samples_over(samples, start_ns: int, wall_ms: float) -> list:
    """The CPU samples whose window overlaps the repeat from `start_ns` for `wall_ms`. A
    sample covers the `window_ns` before its time (0, in old snapshots: its own instant), so
    its figures average over more than the repeat when its window is longer."""
    end_ns = start_ns + wall_ms * 1e6
    return [s for s in samples if s.t_ns > start_ns and s.t_ns - (s.window_ns or 0) < end_ns]
