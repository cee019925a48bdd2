"""What a partui process tree holds, read from /proc: shared by the lifecycle tests and the
soak benchmark (which counts the same things over a long session)."""

from __future__ import annotations

import os
import signal

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


def kill_session(proc) -> None:
    """SIGKILL whatever is left of the session `proc` (a Popen started in its own session)
    leads: a test's clean-up however it ended."""
    for pid in session_pids(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if proc.poll() is None:
        proc.kill()


def memory_split(pid: int) -> tuple[float, float]:
    """(files, anonymous) resident MB of a process: its file mappings (shared libraries),
    and its anonymous ones with the heap (Python's objects, compiled code, arrays)."""
    files = anon = 0
    kind = ""
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 5 and "-" in parts[0] and len(parts[1]) == 4:  # a mapping
                    path = parts[5] if len(parts) > 5 else ""
                    kind = "anon" if path in ("", "[heap]") else "" if path[0] == "[" else "file"
                elif parts and parts[0] == "Rss:" and kind:
                    if kind == "file":
                        files += int(parts[1])
                    else:
                        anon += int(parts[1])
    except OSError:
        return float("nan"), float("nan")
    return files / 1024, anon / 1024
