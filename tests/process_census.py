"""What a partui process tree holds, read from /proc: shared by the lifecycle tests and the
soak benchmark (which counts the same things over a long session)."""

from __future__ import annotations

import os

import psutil


def shm_mapped(procs) -> set[str]:
    """/dev/shm entries (psm_* segments, sem.* semaphores) these processes have mapped (not
    deleted ones)."""
    names = set()
    for p in procs:
        try:
            with open(f"/proc/{p.pid}/maps") as f:
                for line in f:
                    if "/dev/shm/" in line and not line.rstrip().endswith("(deleted)"):
                        names.add(line.split("/dev/shm/", 1)[1].strip())
        except OSError:
            continue
    return names


def session_pids(sid: int) -> list[int]:
    """The live (not zombie) processes of session `sid`: a command started in its own
    session and everything it started."""

    out = []
    for p in psutil.process_iter():
        try:
            if os.getsid(p.pid) == sid and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p.pid)
        except (OSError, psutil.Error):
            pass
    return out
