"""CPU sampling while a run works: per-core use, each worker's CPU time, the engine's own use.

Per-core use comes from psutil. Worker CPU time is read, on Linux, from the kernel's CPU
clocks of a thread of this process or of another process (clock_gettime on the clock id
that clock_getcpuclockid / pthread_getcpuclockid would return): exact to the nanosecond
even while the worker runs, and cheap to read. Fallbacks: the scheduler statistics
(/proc/.../schedstat, nanoseconds but only updated at ticks and switches for a running
task), then psutil, whose per-thread and per-process times come in 10 ms clock ticks,
too coarse for runs of a few milliseconds.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable

import psutil

from partui.profiles.records.events import CpuSample

SAMPLE_HZ = 12.5  # >= 10 Hz with room for timer slack; a sample's CPU cost stays small
IDLE_HZ = 2.0  # the always-on monitor between runs
FIRST_SAMPLE_S = 0.1  # the window of the first sample after start()
MIN_WINDOW_S = 0.02  # shorter windows are merged into the next sample (clock ticks are 10 ms)
PROC = "/proc"


def _schedstat_ns(path: str) -> int | None:
    try:
        with open(path, "rb") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


_LINUX = sys.platform.startswith("linux")
_CPUCLOCK_SCHED, _CPUCLOCK_PERTHREAD = 2, 4  # linux/posix-timers.h


def _cpu_clock_s(ident: int, per_thread: bool) -> float | None:
    """The kernel's CPU clock of a process (or of a thread of this process), in seconds."""
    if not _LINUX:
        return None
    clock = (~ident << 3) | _CPUCLOCK_SCHED | (_CPUCLOCK_PERTHREAD if per_thread else 0)
    try:
        return time.clock_gettime(clock)
    except OSError:  # gone, or not allowed
        return None


def thread_cpu_s(tid: int) -> float | None:
    """CPU seconds used by thread `tid` of this process, or None when it is gone."""
    v = _cpu_clock_s(tid, per_thread=True)
    if v is not None:
        return v
    ns = _schedstat_ns(f"{PROC}/{os.getpid()}/task/{tid}/schedstat")
    if ns is not None:
        return ns / 1e9
    try:
        for t in psutil.Process().threads():
            if t.id == tid:
                return t.user_time + t.system_time
    except psutil.Error:
        pass
    return None


def process_cpu_s(pid: int) -> float | None:
    """CPU seconds used by every thread of process `pid`, or None when it is gone."""
    v = _cpu_clock_s(pid, per_thread=False)
    if v is not None:
        return v
    try:
        tasks = os.listdir(f"{PROC}/{pid}/task")
    except OSError:
        tasks = []
    total, seen = 0, False
    for tid in tasks:
        ns = _schedstat_ns(f"{PROC}/{pid}/task/{tid}/schedstat")
        if ns is not None:
            total += ns
            seen = True
    if seen:
        return total / 1e9
    try:
        t = psutil.Process(pid).cpu_times()
        return t.user + t.system
    except psutil.Error:
        return None


def _core_busy() -> list[tuple[float, float]]:
    """(busy, total) seconds per logical CPU since boot."""
    out = []
    for t in psutil.cpu_times(percpu=True):
        total = sum(t)
        idle = t.idle + getattr(t, "iowait", 0.0)
        out.append((total - idle, total))
    return out


class CpuSampler:
    """Samples on its own thread at `hz` and hands each CpuSample to `emit`.

    `workers` maps worker index -> native thread id (threads of this process) or pid
    (`processes=True`). Use as a context manager around the work, or keep one running
    all the time (the dashboard's engine does): `watch()` changes the workers and the rate
    for a run, `record()` / `stop_recording()` collect the samples taken meanwhile.

    `also_pids`: other processes that belong to partui (the dashboard), counted in
    `partui_cpu`; the CPU of every other program is what the cores did beyond that.
    """

    def __init__(
        self,
        workers: dict,  # worker index -> thread id or pid (a tuple: several threads, summed)
        emit: Callable | None = None,
        processes: bool = False,
        hz: float = SAMPLE_HZ,
        also_pids: tuple[int, ...] = (),
    ):
        self.workers = dict(workers)
        self.processes = processes
        self.interval = 1.0 / hz
        self.emit = emit or (lambda sample: None)
        self.also_pids = tuple(also_pids)
        self.samples: list[CpuSample] = []
        self.keep = True  # append every sample to `samples` (an always-on monitor records instead)
        self.cores = psutil.cpu_count() or 1
        self._recording: list | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        # (t_ns, core busy, process cpu s, {pid: cpu s} of partui's others)
        self._last: tuple | None = None

    def worker_cpu(self) -> dict[int, float]:
        """CPU seconds used so far by each worker that still exists."""
        read = process_cpu_s if self.processes else thread_cpu_s
        out = {}
        for index, ident in self.workers.items():
            # a worker may be several threads taking turns (the `threads` executor's worker 0:
            # the calling thread, and its own thread for submitted jobs): their sum
            got = [read(i) for i in ident] if isinstance(ident, tuple) else [read(ident)]
            values = [v for v in got if v is not None]
            if values:
                out[index] = sum(values)
        return out

    def _other_partui_cpu(self) -> dict[int, float]:
        """CPU seconds of partui's processes besides this one: the dashboard, process workers."""
        pids = list(self.also_pids)
        if self.processes:
            pids += list(self.workers.values())
        out = {}
        for pid in pids:
            v = process_cpu_s(pid)
            if v is not None:
                out[pid] = v
        return out

    def sample(self, emit: bool = False) -> CpuSample | None:
        """Take one sample: what happened since the previous one.

        None for the first (it only sets the starting point), and for a window shorter
        than MIN_WINDOW_S: the CPU times move in clock ticks, so a short window reads as
        0% or as several cores' worth; the next sample covers it instead.
        """
        with self._lock:
            c0 = time.thread_time_ns()
            now = time.perf_counter_ns()
            proc = time.process_time()
            cores = _core_busy()
            others = self._other_partui_cpu()
            workers = self.worker_cpu()
            last = self._last
            if last is not None and (now - last[0]) / 1e9 < MIN_WINDOW_S:
                return None
            self._last = (now, cores, proc, others)
            if last is None:
                return None
            t_last, cores_last, proc_last, others_last = last
            wall = (now - t_last) / 1e9
            per_core = []
            for (b1, t1), (b0, t0) in zip(cores, cores_last):
                dt = t1 - t0
                per_core.append(
                    min(100.0, max(0.0, 100.0 * (b1 - b0) / dt)) if dt > 0 else float("nan")
                )
            cap = 100.0 * self.cores  # % of one core: never more than every core
            engine = min(cap, max(0.0, 100.0 * (proc - proc_last) / wall))
            # a process seen for the first time has no starting point: left out, not 0%
            rest = sum(v - others_last[pid] for pid, v in others.items() if pid in others_last)
            partui = min(cap, engine + max(0.0, 100.0 * rest / wall))
            known = [v for v in per_core if v == v]
            total = sum(known) * len(per_core) / len(known) if known else float("nan")
            other = max(0.0, total - partui) if total == total else None
            cost = (time.thread_time_ns() - c0) / 1e3
            s = CpuSample(
                now,
                per_core,
                workers,
                engine,
                cost,
                window_ns=now - t_last,
                partui_cpu=partui,
                others_cpu=other,
            )
            if self.keep:
                self.samples.append(s)
            if self._recording is not None:
                self._recording.append(s)
            if emit:  # under the lock: samples go out in the order they were taken
                self.emit(s)
        return s

    # -- an always-on monitor ------------------------------------------------
    def watch(self, workers: dict, processes: bool, hz: float) -> None:
        """Sample these workers at `hz` from now on (a run starts or ends)."""
        self.sample(emit=True)  # closes the window before the change
        with self._lock:
            self.workers = dict(workers)
            self.processes = processes
            self.interval = 1.0 / hz
            if self._last is not None:  # process workers changed: restart their baseline
                self._last = self._last[:3] + (self._other_partui_cpu(),)
        self._wake.set()

    def record(self) -> None:
        with self._lock:
            self._recording = []

    def stop_recording(self) -> list[CpuSample]:
        """The samples taken since record(), the window up to now included."""
        self.sample(emit=True)
        with self._lock:
            out, self._recording = self._recording or [], None
        return out

    def _loop(self) -> None:
        # the first sample comes soon (a chart waits for it), then one every interval
        next_t = time.perf_counter() - self.interval + min(self.interval, FIRST_SAMPLE_S)
        while not self._stop.is_set():
            self.sample(emit=True)
            next_t += self.interval
            delay = next_t - time.perf_counter()
            if delay < 0:  # fell behind (a busy machine): do not burst to catch up
                next_t, delay = time.perf_counter(), 0
            if self._wake.wait(delay):  # the rate changed: the new period starts now
                self._wake.clear()
                next_t = time.perf_counter()

    def start(self) -> CpuSampler:
        self.sample()  # the starting point, taken before the work begins
        self._thread = threading.Thread(target=self._loop, name="partui-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and take a last sample, so even a short run has one."""
        if self._thread is not None:
            self._stop.set()
            self._wake.set()
            self._thread.join()
            self._thread = None
            self.sample(emit=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def on_cpu_ratios(
    cpu_before: dict[int, float], cpu_after: dict[int, float], busy_ms: list[float]
) -> list[float]:
    """Per worker: CPU time / busy wall time (its summed task time) over the same stretch.

    Well below 1: the worker waited while it had work (the GIL, memory, another process).
    NaN where the worker did no work or its CPU time could not be read.
    """
    out = []
    for w, busy in enumerate(busy_ms):
        if busy <= 0 or w not in cpu_before or w not in cpu_after:
            out.append(float("nan"))
        else:
            out.append((cpu_after[w] - cpu_before[w]) * 1e3 / busy)
    return out
