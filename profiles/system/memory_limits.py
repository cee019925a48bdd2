"""How much more memory this process may use, and which limit says so.

System-wide available memory is not the whole story: a process under `ulimit -v`
(RLIMIT_AS) or in a container with a cgroup `memory.max` fails long before the machine runs
short, with a bare MemoryError or an OSError from mmap. Checks before large allocations
take the smallest of the three and name it.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Room:
    bytes: int  # how much more may be allocated
    limit: str  # which limit sets it, for messages: "available system memory", ...


def _rlimit_room() -> Room | None:
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    import psutil

    used = psutil.Process().memory_info().vms
    return Room(max(0, soft - used), f"the address-space limit (ulimit -v {soft // 1024})")


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max": no limit at this level


def cgroup_dirs(proc_cgroup: str | None = None, root: Path = CGROUP_ROOT) -> list[Path]:
    """This process's cgroup (v2) folder and its parents up to the root, innermost first."""
    if proc_cgroup is None:
        try:
            proc_cgroup = Path("/proc/self/cgroup").read_text()
        except OSError:
            return []
    for line in proc_cgroup.splitlines():
        if line.startswith("0::"):
            rel = Path(line[3:].strip().lstrip("/"))
            dirs = [root / rel, *[root / p for p in rel.parents]]
            return [d for d in dirs if d.is_dir()]
    return []


def _cgroup_room(root: Path = CGROUP_ROOT, proc_cgroup: str | None = None) -> Room | None:
    best = None
    for d in cgroup_dirs(proc_cgroup, root):
        limit = _read_int(d / "memory.max")
        if limit is None:
            continue
        current = _read_int(d / "memory.current") or 0
        room = Room(
            max(0, limit - current),
            f"the cgroup memory limit ({d / 'memory.max'}: {limit // 2**20} MiB)",
        )
        if best is None or room.bytes < best.bytes:
            best = room
    return best


def memory_room(include_rlimit: bool = True) -> Room:
    """The smallest of: available system memory, RLIMIT_AS headroom (this process's own; not
    for memory its child processes use), cgroup memory.max room."""
    import psutil

    rooms = [Room(psutil.virtual_memory().available, "available system memory")]
    for r in (_rlimit_room() if include_rlimit else None, _cgroup_room()):
        if r is not None:
            rooms.append(r)
    return min(rooms, key=lambda r: r.bytes)


def shortfall(need: int, spare: int = 0, include_rlimit: bool = True) -> str | None:
    """None if `need` (+ `spare`) bytes fit; else one line saying which limit is short."""
    room = memory_room(include_rlimit)
    if need + spare <= room.bytes:
        return None
    extra = f" plus {spare / 2**20:.0f} MiB to spare" if spare else ""
    return (
        f"needs {need / 2**20:.0f} MiB{extra}, and {room.bytes / 2**20:.0f} MiB is left "
        f"under {room.limit}"
    )
