"""What else the machine does while the bench runs: other processes' CPU, and the peak
memory of partui's own processes."""

from __future__ import annotations

import os
import resource
import time


class OtherLoad:
    """CPU used by *other* processes over a stretch, in cores: the machine's busy time
    (/proc/stat) minus this process tree's. On a shared machine, a second worker only
    helps when a second core is free, so every figure comes with this."""

    def __init__(self):
        self._start = self._read()

    @staticmethod
    def _read() -> tuple[float, float, float] | None:
        import psutil

        try:
            with open("/proc/stat") as fh:
                v = [int(x) for x in fh.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        busy = (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")
        me = psutil.Process()
        own = sum(me.cpu_times()[:2]) + sum(os.times()[2:4])  # + reaped children
        for child in me.children(recursive=True):
            try:
                own += sum(child.cpu_times()[:2])
            except psutil.Error:
                pass
        return busy, own, time.monotonic()

    def cores(self) -> float | None:
        end = self._read()
        if self._start is None or end is None or end[2] <= self._start[2]:
            return None
        other = (end[0] - self._start[0]) - (end[1] - self._start[1])
        return max(0.0, other / (end[2] - self._start[2]))


class MemoryWatch:
    """Peak resident memory of this process and its worker processes, read between runs.

    Each process's own high-water mark (VmHWM) is exact; their sum at a moment
    bounds what the whole tree held at once. Sampling only between runs keeps
    the measurement out of the timed repeats.
    """

    def __init__(self):
        self.bound = 0
        self.largest_child = 0

    def sample(self) -> None:
        import psutil

        me = psutil.Process()
        total = _hwm(me)
        for child in me.children(recursive=True):
            peak = _hwm(child)
            self.largest_child = max(self.largest_child, peak)
            total += peak
        self.bound = max(self.bound, total)

    def summary(self) -> dict:
        self.sample()
        main = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
        return {"main": main, "largest_child": self.largest_child, "bound": max(self.bound, main)}


def _hwm(proc) -> int:
    """A process's peak resident bytes (/proc VmHWM), else its current RSS, else 0 (it is gone)."""
    import psutil

    try:
        with open(f"/proc/{proc.pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        return proc.memory_info().rss
    except psutil.Error:
        return 0


def loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None
