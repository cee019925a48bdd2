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


QUIET_OTHER_CORES = 0.2  # over the whole run: what other programs may use for "quiet"
QUIET_OTHER_CORES_LAYER = 0.5  # ...and while any one layer was measured


def bench_conditions(
    other_cores: float | None,
    layer_other_cores: dict[str, float | None],
    load_average: dict[str, list[float] | None],
    machine_reasons: list[str] | None = None,
) -> dict:
    """Whether the machine was quiet while the bench ran, and why not: the one place bench
    decides it (a target is met only in a quiet run). From bench's own measurement of other
    programs' CPU (OtherLoad), run-wide and per layer; the load average is reported, not
    judged, since it counts the bench's own threads too."""
    reasons = list(machine_reasons or [])  # the governor, turbo: read by system.conditions
    if other_cores is None:
        reasons.append("other programs' CPU use could not be read (/proc/stat)")
    elif other_cores > QUIET_OTHER_CORES:
        reasons.append(
            f"other programs used {other_cores:.2f} cores on average over the run "
            f"(quiet: <= {QUIET_OTHER_CORES:g})"
        )
    busy = {k: v for k, v in layer_other_cores.items() if v is not None}
    busy = {k: v for k, v in busy.items() if v > QUIET_OTHER_CORES_LAYER}
    if busy:
        worst = max(busy, key=lambda k: busy[k])
        reasons.append(
            f"other programs used up to {busy[worst]:.2f} cores while {worst} was measured "
            f"(quiet: <= {QUIET_OTHER_CORES_LAYER:g} per layer)"
        )
    return {
        "quiet": not reasons,
        "reasons": reasons,
        "source": "partui.profiles.bench.environment.OtherLoad",
        "other_cpu_cores": other_cores,
        "layer_other_cpu_cores": dict(layer_other_cores),
        "load_average": dict(load_average),
    }
