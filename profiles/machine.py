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
    out = []
    base = SYS_CPU / "cpu0" / "cache"
    if not base.is_dir():
        return out
    for index in sorted(base.glob("index*")):
        out.append({
            "level": int(_read(index / "level") or 0),
            "type": _read(index / "type"),
            "size": _parse_size(_read(index / "size")),
            "line": int(_read(index / "coherency_line_size") or 0) or None,
            "shared_cpus": _read(index / "shared_cpu_list"),
        })
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
