"""What partui is doing, as the header says it: each tab's activity and the CPU of partui.

Every tab reports what it runs (messages.TabStatus); the header names it and never guesses.
partui's CPU is this process and every process under it (the engine, a training run, a lab
experiment and their workers, pools and clusters); other programs are the rest of the
machine's busy time, measured over the same interval.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import psutil

from partui.profiles.records.events import Compiling


@dataclass(frozen=True)
class CpuShare:
    """% of one core over the last interval (None: not measured yet)."""

    partui: float | None = None  # every partui process
    dashboard: float | None = None  # this process alone
    others: float | None = None  # every other program


class ProcessCensus:
    """Measures the CPU of this process and its descendants against the whole machine's."""

    def __init__(self, root: psutil.Process | None = None):
        self.root = root or psutil.Process()
        self._known: dict[
            int, psutil.Process
        ] = {}  # kept: cpu_percent() measures from the last call
        self.pids: set[int] = set()  # the processes counted at the last measure
        self._busy, self._at = self._machine_busy(), time.monotonic()
        self.measure()

    @staticmethod
    def _machine_busy() -> float:
        t = psutil.cpu_times()
        return sum(t) - t.idle - getattr(t, "iowait", 0.0)

    def _family(self) -> tuple[list[psutil.Process], set[int]]:
        """This process and its descendants now, and the pids of those new since last time."""
        try:
            found = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            found = [self.root]
        new = {p.pid for p in found if p.pid not in self._known}
        family = [self._known.get(p.pid, p) for p in found]
        self._known = {p.pid: p for p in family}
        return family, new

    def measure(self) -> CpuShare:
        busy, now = self._machine_busy(), time.monotonic()
        wall = now - self._at
        own = total = 0.0
        counted = set()
        family, new = self._family()
        for proc in family:
            try:
                pct = proc.cpu_percent(None)
                if proc.pid in new and wall > 0:  # started since the last measure: all of
                    times = proc.cpu_times()  # its CPU time falls in this interval
                    pct = 100.0 * (times.user + times.system) / wall
            except psutil.Error:  # ended since it was listed
                continue
            counted.add(proc.pid)
            total += pct
            if proc.pid == self.root.pid:
                own = pct
        self.pids = counted
        machine = 100.0 * (busy - self._busy) / wall if wall > 0 else 0.0
        self._busy, self._at = busy, now
        return CpuShare(total, own, max(0.0, machine - total))


@dataclass
class Activity:
    """The tabs' modes, what the engine compiles, and the CPU last measured: the header's."""

    modes: dict[str, str] = field(default_factory=dict)  # tab -> what it runs
    compiling: str | None = None
    cpu: CpuShare = field(default_factory=CpuShare)

    def compiled(self, ev: Compiling) -> None:
        """The engine compiles kernels (the first runs after an install), or is done."""
        left = f"{ev.left} layer{'s' if ev.left > 1 else ''} to go"
        self.compiling = (
            None if ev.done else f"compiling kernels, first run only: {ev.layer} ({left})"
        )

    def report(self, tab: str, mode: str | None) -> None:
        if mode:
            self.modes[tab] = mode
        else:
            self.modes.pop(tab, None)

    @property
    def mode(self) -> str:
        text = " + ".join(self.modes.values()) or "idle"
        return f"{text} | {self.compiling}" if self.compiling else text
