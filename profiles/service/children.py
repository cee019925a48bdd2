"""Ending a child process of partui and every process it started (pools, fork servers),
gently first."""

from __future__ import annotations

import os
import subprocess


def descendants(pid: int) -> list:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def end_child(proc: subprocess.Popen, family: list, conns, timeout: float) -> None:
    """After asking a child to stop: wait for it, then terminate and kill it if it hangs;
    reap every process of its family and close its pipes."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        family = descendants(proc.pid) + family
        proc.terminate()
        try:
            proc.wait(0.5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    reap(family, timeout)
    for conn in conns:
        if conn is not None:
            conn.close()


def reap(procs: list, timeout: float) -> None:
    """Let the child's own processes end by themselves, then terminate what is left."""
    import psutil

    if not procs:
        return
    _, alive = psutil.wait_procs(procs, timeout=min(timeout, 1.0))
    for p in alive:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(alive, timeout=0.5)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass


def last_line(stream, tail: int = 4096) -> str:
    """The last non-empty line a child wrote to `stream` (a file it shared), or ''."""
    if stream is None:
        return ""
    try:
        stream.seek(max(0, stream.seek(0, os.SEEK_END) - tail))
        lines = stream.read().decode(errors="replace").strip().splitlines()
    except (OSError, ValueError):
        return ""
    return lines[-1].strip()[:300] if lines else ""
