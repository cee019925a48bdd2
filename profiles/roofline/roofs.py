"""This machine's roofs: compute from the float32 GEMM peak, memory from the mountain's plateaus.

Compute roofs: the GEMM peak (bench's `gemm_peak`, the median of its repeats) at 1, 2 .. N
threads, N the CPUs this process may use. Memory roofs: the native read loop of the memory
mountain (numba, no GIL) sweeping a working set well inside L1, L2 and L3 and far beyond L3
(DRAM), at 1 thread and at N threads (each thread its own buffer), as bytes read per second
of wall time. Sizes come from sysfs at run time.

A roof is the best of its samples (the median and the slowest are kept beside it): a roof is
what the machine can do, and another program taking the core only ever slows a sample, so
on a shared machine the median of a peak measures the load, and a roof set by it would be
beaten by the runs it bounds. More threads never lower what can be attained (the extra ones
may idle), so a roof at t threads is at least the one at fewer.

Measuring takes a few seconds; the result is kept in `$PARTUI_ROOFS` (else
`$XDG_CACHE_HOME/partui/roofs.json`) under a key of CPU model, flags and CPU count, with the
date it was measured: another CPU (or a changed one) measures its own.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from partui.profiles.files.checked_json import Check, FileProblem, parse_bounded
from partui.profiles.system import machine

FORMAT = "partui-roofs"
VERSION = 1
LEVELS = ("L1", "L2", "L3", "DRAM")
MiB = 2**20
DRAM_MIN = 64 * MiB  # far beyond the largest cache, and at least this
DRAM_MAX = 512 * MiB  # the lab's memory cap
MAX_BYTES, MAX_VALUES = 2 * MiB, 100_000  # the kept file: a few hundred machines at most


@dataclass(frozen=True)
class RoofSettings:
    # GEMM sizes tried: the compute roof is the best of them. On a host whose caches and
    # memory other programs share, a large GEMM can be starved of bandwidth while a smaller
    # one still runs at the cores' speed; the peak is what the cores can do.
    # Many short calls and samples: the best of them is one that no other program
    # interrupted (a time slice of the scheduler is a few milliseconds).
    gemm_sizes: tuple[int, ...] = (256, 512, 1024)
    gemm_repeats: tuple[int, ...] = (50, 20, 5)
    samples: int = 25  # timed samples per memory roof
    sample_s: float = 0.004  # a memory sample's length

    @classmethod
    def quick(cls) -> RoofSettings:
        """Rough roofs in about a second (tests): fewer GEMMs, shorter samples."""
        return cls(gemm_sizes=(256, 384), gemm_repeats=(5, 3), samples=3, sample_s=0.004)


@dataclass(frozen=True)
class Roof:
    name: str  # peak | L1 | L2 | L3 | DRAM
    kind: str  # compute | memory
    value: float  # the best sample
    unit: str  # GFLOP/s | GB/s
    threads: int
    median: float  # the median and the slowest sample, for the spread
    low: float
    samples: int
    size_bytes: int  # GEMM: n of n x n; memory: the working set of each thread

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RoofSet:
    """The roofs measured on one machine, when, and the cache sizes they were measured for."""

    measured: str  # ISO date-time, UTC
    machine_key: str
    cpu_model: str
    threads: int  # N: the CPUs this process could use
    capacity: dict[str, int]  # L1, L2: bytes per CPU (private share); L3: bytes in all
    roofs: list[Roof] = field(default_factory=list)
    seconds: float = 0.0
    load_average: list[float] | None = None

    def compute(self, threads: int) -> float | None:
        """GFLOP/s of the GEMM peak at `threads`: the best measured at that many or fewer
        (beyond N: no more cores to gain)."""
        fit = [r.value for r in self.roofs if r.kind == "compute" and r.threads <= threads]
        return max(fit) if fit else None

    def bandwidth(self, level: str, threads: int) -> float | None:
        """GB/s of `level` at `threads`: measured at 1 and N; between them the 1-thread
        figure times the threads, never above the N-thread one; never below fewer threads'."""
        by_t = {r.threads: r.value for r in self.roofs if r.kind == "memory" and r.name == level}
        fit = [v for t, v in by_t.items() if t <= threads]
        if not fit:
            return None
        one, most = by_t.get(1), max(by_t)
        between = min(one * threads, by_t[most]) if one is not None and threads < most else 0.0
        return max(*fit, between)

    def to_dict(self) -> dict:
        return {**asdict(self), "roofs": [r.to_dict() for r in self.roofs]}

    @classmethod
    def from_dict(cls, d, where: str = "roofs") -> RoofSet:
        Check.obj(d, where)
        roofs = []
        for i, r in enumerate(Check.array(Check.field(d, "roofs", where), f"{where}.roofs", 200)):
            at = f"{where}.roofs[{i}]"
            Check.obj(r, at)
            roofs.append(
                Roof(
                    name=Check.choice(Check.field(r, "name", at), ("peak", *LEVELS), f"{at}.name"),
                    kind=Check.choice(Check.field(r, "kind", at), ("compute", "memory"), at),
                    value=Check.number(
                        Check.field(r, "value", at), f"{at}.value", 0, 1e9, positive=True
                    ),
                    unit=Check.choice(Check.field(r, "unit", at), ("GFLOP/s", "GB/s"), at),
                    threads=Check.integer(Check.field(r, "threads", at), f"{at}.threads", 1, 2**16),
                    median=Check.number(Check.field(r, "median", at), f"{at}.median", 0, 1e9),
                    low=Check.number(Check.field(r, "low", at), f"{at}.low", 0, 1e9),
                    samples=Check.integer(Check.field(r, "samples", at), f"{at}.samples", 1, 10**6),
                    size_bytes=Check.integer(Check.field(r, "size_bytes", at), at, 1, 2**50),
                )
            )
        capacity = Check.obj(Check.field(d, "capacity", where), f"{where}.capacity")
        return cls(
            measured=Check.text(Check.field(d, "measured", where), f"{where}.measured", 40),
            machine_key=Check.text(Check.field(d, "machine_key", where), f"{where}.key", 400),
            cpu_model=Check.text(Check.field(d, "cpu_model", where), f"{where}.cpu_model", 200),
            threads=Check.integer(Check.field(d, "threads", where), f"{where}.threads", 1, 2**16),
            capacity={
                k: Check.integer(v, f"{where}.capacity.{k}", 1, 2**50)
                for k, v in capacity.items()
                if k in LEVELS
            },
            roofs=roofs,
            seconds=float(d.get("seconds", 0.0))
            if isinstance(d.get("seconds"), int | float)
            else 0.0,
            load_average=d.get("load_average") if isinstance(d.get("load_average"), list) else None,
        )


def usable_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def machine_key() -> str:
    """Which CPU the roofs belong to: its model, a digest of its flags, the CPUs usable."""
    flags = " ".join(sorted(machine.cpu_flags()))
    digest = hashlib.sha256(flags.encode()).hexdigest()[:12]
    return f"{machine.cpu_model()} | flags {digest} | {usable_threads()} cpus"


def capacities() -> dict[str, int]:
    """L1 and L2: each CPU's share (private caches); L3: its whole size (shared). From sysfs."""
    from partui.kernels.runtime.caches import cache_size, own_share

    out = {}
    for level in (1, 2):
        size = own_share(level)
        if size:
            out[f"L{level}"] = size
    l3 = cache_size(3)
    if l3:
        out["L3"] = l3
    return out


def working_sets(capacity: dict[str, int], threads: int) -> dict[str, int]:
    """Bytes each of `threads` threads sweeps to measure each level: the geometric middle of
    the sizes safely inside it, [2 x the level below, half the level] (the mountain's
    plateaus); DRAM: four times every cache together (at least DRAM_MIN), split among the
    threads."""
    out: dict[str, int] = {}
    below = 0
    for level in ("L1", "L2", "L3"):
        size = capacity.get(level)
        if not size:
            continue
        top = size // 2 if level != "L3" else size // (2 * threads)
        lo = 2 * below
        ws = int(math.sqrt(lo * top)) if lo and lo < top else top
        if ws > lo or not lo:
            out[level] = ws // 64 * 64
        below = size if level != "L3" else size // threads
    largest = max(capacity.values(), default=0) * (threads if "L3" not in capacity else 1)
    total = min(max(4 * largest, DRAM_MIN), DRAM_MAX)
    out["DRAM"] = total // threads // 64 * 64
    return out


def measure(
    settings: RoofSettings | None = None, progress: Callable[[str], None] | None = None
) -> RoofSet:
    """Measure every roof now (a few seconds)."""
    from partui.profiles.bench.peaks import gemm_peak
    from partui.profiles.system import blas

    s = settings or RoofSettings()
    say = progress or (lambda text: None)
    started = time.monotonic()
    n = usable_threads()
    roofs = []
    for t in range(1, n + 1):
        tried = []
        for size, repeats in zip(s.gemm_sizes, s.gemm_repeats, strict=True):
            say(f"compute roof: float32 GEMM {size}^3 x {repeats}, {t} thread{'s' * (t > 1)}")
            tried.append(gemm_peak(t, size, repeats))
        g = max(tried, key=lambda x: x["best_gflops"])
        flops = 2 * g["size"] ** 3
        roofs.append(
            Roof("peak", "compute", g["best_gflops"], "GFLOP/s", t, g["gflops"],
                 flops / (g["slowest_ms"] * 1e6), g["repeats"], g["size"])
        )  # fmt: skip
    blas.settle()  # BLAS's threads spin after a threaded call: not beside the memory loops
    capacity = capacities()
    for t in sorted({1, n}):
        for level, ws in working_sets(capacity, t).items():
            say(f"memory roof: {level}, {t} thread{'s' * (t > 1)} x {ws / 1024:.0f} KiB")
            samples = _read_bandwidth(ws, t, s)
            lo, med, hi = _spread(samples)
            roofs.append(Roof(level, "memory", hi, "GB/s", t, med, lo, len(samples), ws))
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        load = None
    return RoofSet(
        measured=datetime.now(UTC).isoformat(timespec="seconds"),
        machine_key=machine_key(),
        cpu_model=machine.cpu_model(),
        threads=n,
        capacity=capacity,
        roofs=roofs,
        seconds=time.monotonic() - started,
        load_average=load,
    )


def _spread(samples: list[float]) -> tuple[float, float, float]:
    from partui.profiles.records.stats import summarize

    x = summarize(samples)
    return x.min, x.median, x.max


def _read_bandwidth(ws: int, threads: int, s: RoofSettings) -> list[float]:
    """GB/s of `threads` threads each reading its own `ws` bytes again and again: bytes read
    over the wall time from the first thread's start to the last one's end."""
    import numpy as np

    from partui.kernels.lab import mountain
    from partui.kernels.lab.buffers import aligned_empty

    read = mountain.native().read_sum
    bufs = []
    for _ in range(threads):
        a = aligned_empty(ws // 4, np.float32)
        a[:] = 1.0
        bufs.append(a)

    def timed(passes: int) -> float:
        spans: list[tuple[int, int]] = [(0, 0)] * threads
        gate = threading.Barrier(threads)

        def work(i: int) -> None:
            gate.wait()
            t0 = time.perf_counter_ns()
            read(bufs[i], passes)
            spans[i] = (t0, time.perf_counter_ns())

        others = [threading.Thread(target=work, args=(i,)) for i in range(1, threads)]
        for th in others:
            th.start()
        work(0)
        for th in others:
            th.join()
        wall = max(e for _, e in spans) - min(b for b, _ in spans)
        return threads * ws * passes / max(wall, 1)  # bytes per ns = GB/s

    timed(1)  # compiled, pages touched, caches warm
    one = ws / timed(1) * 1e-9  # seconds a pass
    passes = max(1, round(s.sample_s / max(one, 1e-9)))
    return [timed(passes) for _ in range(s.samples)]


# -- the cache of measured roofs ---------------------------------------------------------


def default_path() -> Path:
    env = os.environ.get("PARTUI_ROOFS")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "partui" / "roofs.json"


def load(path: Path | None = None, key: str | None = None) -> RoofSet | None:
    """The roofs kept for this machine (`key`: machine_key()), or None: none kept, another
    CPU's only, or a file that cannot be used (it is replaced at the next save)."""
    path = path or default_path()
    key = key or machine_key()
    try:
        data = parse_bounded(path, MAX_BYTES, 8, "roofs", MAX_VALUES)
        Check.obj(data, "roofs")
        if data.get("format") != FORMAT:
            return None
        entry = Check.obj(Check.field(data, "machines", "roofs"), "roofs.machines").get(key)
        return RoofSet.from_dict(entry, "roofs") if entry is not None else None
    except (OSError, FileProblem):
        return None


def save(roofs: RoofSet, path: Path | None = None) -> str | None:
    """Keep `roofs` beside any other machine's; a problem is returned as one line, never
    raised (the roofs are only a cache)."""
    from partui.profiles.files.safe_files import write_text

    path = path or default_path()
    try:  # other CPUs' roofs kept beside; a file that cannot be read is replaced
        data = parse_bounded(path, MAX_BYTES, 8, "roofs", MAX_VALUES)
    except (OSError, FileProblem):
        data = {}
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        data = {}
    kept = data.get("machines")
    machines: dict = kept if isinstance(kept, dict) else {}
    machines[roofs.machine_key] = roofs.to_dict()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(
            path,
            json.dumps({"format": FORMAT, "version": VERSION, "machines": machines}, indent=1),
            overwrite=True,
        )
    except OSError as exc:
        return f"roofs not saved to {path}: {exc.strerror or exc}"
    return None


def cached_or_measured(
    remeasure: bool = False,
    settings: RoofSettings | None = None,
    progress: Callable[[str], None] | None = None,
    path: Path | None = None,
) -> tuple[RoofSet, str | None]:
    """This machine's roofs: the kept ones unless `remeasure`, else measured now and kept.
    Returns the roofs and a problem to tell (the cache not written), or None."""
    if not remeasure:
        kept = load(path)
        if kept is not None:
            return kept, None
    roofs = measure(settings, progress)
    return roofs, save(roofs, path)
