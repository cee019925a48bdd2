"""This machine's caches as sysfs lists them (cpu0): read at run time, never assumed.

Here, below `profiles`, so the kernels can size their chunks by the caches too.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

SYS_CPU = Path("/sys/devices/system/cpu")


def read_attr(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def parse_size(text: str | None) -> int | None:
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
                "level": int(read_attr(index / "level") or 0),
                "type": read_attr(index / "type"),
                "size": parse_size(read_attr(index / "size")),
                "line": int(read_attr(index / "coherency_line_size") or 0) or None,
                "shared_cpus": read_attr(index / "shared_cpu_list"),
            }
        )
    return out


def cache_size(level: int) -> int | None:
    """Bytes of the data (or unified) cache at `level`, or None where sysfs does not say."""
    for c in caches():
        if c["level"] == level and c["type"] in ("Data", "Unified"):
            return c["size"]
    return None


def cpu_count_in(cpu_list: str | None) -> int:
    """How many CPUs a sysfs list names ('0-1', '0,2,4-7'); 1 when it says nothing."""
    n = 0
    for part in (cpu_list or "").split(","):
        lo, _, hi = part.strip().partition("-")
        try:
            n += int(hi or lo) - int(lo) + 1
        except ValueError:
            continue
    return max(1, n)


@lru_cache(maxsize=8)
def own_share(level: int) -> int | None:
    """Bytes of the data (or unified) cache at `level` per CPU sharing it: what one worker
    can count on when every CPU runs one. Read once per process (kernels ask on every call)."""
    for c in caches():
        if c["level"] == level and c["type"] in ("Data", "Unified") and c["size"]:
            return c["size"] // cpu_count_in(c["shared_cpus"])
    return None


def line_size() -> int | None:
    for c in caches():
        if c["line"]:
            return c["line"]
    return None
