"""What machine this is: CPU, cores, caches (from sysfs), memory, BLAS, versions."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

SYS_CPU = Path("/sys/devices/system/cpu")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _parse_size(text: str | None) -> int | None:
    """sysfs cache sizes look like '48K' or '2048K' or '32768K'."""
    if not text:
        return None
    units = {"K": 1024, "M": 1024**2, "G": 1024**3}
    mult = units.get(text[-1].upper(), 1)
    digits = text[:-1] if text[-1].upper() in units else text
    try:
        return int(digits) * mult
    except ValueError:
        return None


def caches() -> list[dict]:
    """Caches of cpu0 as sysfs shows them: level, type, size in bytes, line size, sharing."""
    out: list[dict] = []
    base = SYS_CPU / "cpu0" / "cache"
    if not base.is_dir():
        return out
    for index in sorted(base.glob("index*")):
        out.append(
            {
                "level": int(_read(index / "level") or 0),
                "type": _read(index / "type"),
                "size": _parse_size(_read(index / "size")),
                "line": int(_read(index / "coherency_line_size") or 0) or None,
                "shared_cpus": _read(index / "shared_cpu_list"),
            }
        )
    return out


def cache_size(level: int) -> int | None:
    """Bytes of the data (or unified) cache at `level`, or None where sysfs does not say."""
    for c in caches():
        if c["level"] == level and c["type"] in ("Data", "Unified"):
            return c["size"]
    return None


def line_size() -> int | None:
    for c in caches():
        if c["line"]:
            return c["line"]
    return None


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
    import numpy
    import psutil

    from . import blas

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
        "blas": blas.libraries(),
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "hostname": platform.node(),
    }
