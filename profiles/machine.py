"""What machine this is: CPU, cores, caches (from sysfs), memory, BLAS, versions."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from partui.kernels.caches import (  # noqa: F401 (re-exported: machine.caches and friends)
    SYS_CPU,
    _parse_size,
    _read,
    cache_size,
    caches,
    line_size,
)


def cpu_model() -> str:
    text = _read(Path("/proc/cpuinfo")) or ""
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _cpuinfo_field(name: str) -> str | None:
    """The first `name : value` of /proc/cpuinfo (cpu0), or None."""
    for line in (_read(Path("/proc/cpuinfo")) or "").splitlines():
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


def info() -> dict:
    """Everything `partui info` shows, as a plain dict (snapshots keep it)."""
    return {**host_info(), **blas_info()}


def host_info() -> dict:
    """The machine without its BLAS: no numpy import, so a dashboard can start on it."""
    import psutil

    mem = psutil.virtual_memory()
    return {
        "cpu_model": cpu_model(),
        "logical_cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "caches": caches(),
        "cache_line": line_size(),
        "memory_total": mem.total,
        "memory_available": mem.available,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "hostname": platform.node(),
    }


def blas_info() -> dict:
    """The BLAS libraries numpy loaded, and numpy's version (imports numpy)."""
    import numpy

    from . import blas

    return {"blas": blas.libraries(), "numpy": numpy.__version__}
