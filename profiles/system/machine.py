"""What machine this is: CPU, cores, caches (from sysfs), memory, BLAS, versions."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from partui.kernels.runtime.caches import (  # noqa: F401 (re-exported: machine.caches and friends)
    SYS_CPU,
    cache_size,
    caches,
    line_size,
    parse_size,
    read_attr,
)


def cpu_model() -> str:
    text = read_attr(Path("/proc/cpuinfo")) or ""
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _cpuinfo_field(name: str) -> str | None:
    """The first `name : value` of /proc/cpuinfo (cpu0), or None."""
    for line in (read_attr(Path("/proc/cpuinfo")) or "").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return None


def cpu_flags() -> set[str]:
    """The CPU's feature flags as the kernel reports them (/proc/cpuinfo), read now."""
    return set((_cpuinfo_field("flags") or "").split())


# (flag, name, register bits), oldest first: the last one present is the widest
VECTOR_EXTENSIONS = [
    ("sse2", "SSE2", 128),
    ("avx", "AVX", 256),
    ("avx2", "AVX2", 256),
    ("avx512f", "AVX-512", 512),
]


def vector_extensions(flags: set[str] | None = None) -> dict:
    """Which vector instruction sets this CPU has, the widest register, FMA: from the flags."""
    flags = cpu_flags() if flags is None else flags
    present = [(name, bits) for flag, name, bits in VECTOR_EXTENSIONS if flag in flags]
    return {
        "extensions": [name for name, _ in present] + (["FMA"] if "fma" in flags else []),
        "widest": present[-1][0] if present else None,
        "register_bits": present[-1][1] if present else 64,
        "avx512_subsets": sorted(f for f in flags if f.startswith("avx512")),
    }


def cpu_mhz() -> float | None:
    """The clock the kernel last reported for cpu0 (MHz); it may differ under boost or load."""
    try:
        return float(_cpuinfo_field("cpu MHz") or "")
    except ValueError:
        return None


@dataclass
class MachineInfo:
    """What `partui info` shows and a snapshot keeps of the machine it was made on.

    Fields are None where this machine (or an older snapshot) does not say. `blas` and
    `numpy` stay None until read (reading them imports numpy): the dashboard shows its
    first frame before. `caches` are sysfs's records (level, type, size, line, shared_cpus),
    `blas` threadpoolctl's (internal_api, version, num_threads, ...), both as read.
    """

    cpu_model: str | None = None
    logical_cores: int | None = None
    physical_cores: int | None = None
    usable_cores: int | None = None
    caches: list[dict] = field(default_factory=list)
    cache_line: int | None = None
    memory_total: int | None = None
    memory_available: int | None = None
    python: str | None = None
    platform: str | None = None
    hostname: str | None = None
    blas: list[dict] | None = None
    numpy: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # keys another partui wrote: kept

    def to_dict(self, keys: tuple[str, ...] = ()) -> dict[str, Any]:
        """The snapshot's (and `partui info --json`'s) form: the same keys as ever; BLAS and
        numpy once read; keys another partui wrote, as they were. `keys`: only these."""
        if keys:
            return {k: getattr(self, k) for k in keys}
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        for late in ("blas", "numpy"):
            if out[late] is None:
                del out[late]
        return {**self.extra, **out}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MachineInfo:
        """From a validated snapshot's `machine` (snapshot_validation.validate checks the types)."""
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(
            **{k: v for k, v in d.items() if k in known},
            extra={k: v for k, v in d.items() if k not in known},
        )

    def with_blas(self) -> MachineInfo:
        """This machine's record with its BLAS libraries and numpy's version read (imports
        numpy)."""
        import numpy

        from partui.profiles.system import blas

        return replace(self, blas=blas.libraries(), numpy=numpy.__version__)

    def fingerprint(self) -> str:
        """Which machine, for the book of baselines: CPU model, logical cores, host name."""
        return f"{self.cpu_model} | {self.logical_cores} cpus | {self.hostname}"


def info() -> MachineInfo:
    """Everything `partui info` shows (snapshots keep it)."""
    return host_info().with_blas()


def host_info() -> MachineInfo:
    """The machine without its BLAS: no numpy import, so a dashboard can start on it."""
    import psutil

    mem = psutil.virtual_memory()
    return MachineInfo(
        cpu_model=cpu_model(),
        logical_cores=psutil.cpu_count(logical=True),
        physical_cores=psutil.cpu_count(logical=False),
        usable_cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        caches=caches(),
        cache_line=line_size(),
        memory_total=mem.total,
        memory_available=mem.available,
        python=sys.version.split()[0],
        platform=platform.platform(),
        hostname=platform.node(),
    )
