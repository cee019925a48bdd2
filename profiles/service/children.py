"""partui's child processes: starting one (a fresh interpreter, two pipes), hearing why it
died, and ending it with every process it started (pools, fork servers), gently first."""

from __future__ import annotations

import os
import subprocess
import sys
from multiprocessing.connection import Connection

KEEP = "keep"  # a child's stderr kept in a temporary file (Child's default)


class Child:
    """A fresh interpreter running `code` with `python -P -c`: the current folder is not put
    first on sys.path, so a `partui` folder there cannot shadow the installed package.
    Commands go in and events come out as pickles over two pipes, whose descriptors are
    the child's first two arguments. Not a multiprocessing Process: spawn and forkserver
    children import the parent's __main__, which may import textual.

    `stderr`: where the child's stderr goes, as subprocess takes it; KEEP keeps it in a
    temporary file, so that a child that dies can say why (died()).
    """

    def __init__(self, code: str, args: list[str], stderr=KEEP):
        self.stderr_file = None
        if stderr == KEEP:
            import tempfile  # here: it loads shutil, and this module loads with the dashboard

            self.stderr_file = tempfile.TemporaryFile()
        cmd_r, cmd_w = os.pipe()
        evt_r, evt_w = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-P", "-c", code, str(cmd_r), str(evt_w), *args],
                pass_fds=(cmd_r, evt_w),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self.stderr_file if stderr == KEEP else stderr,
            )
        finally:
            os.close(cmd_r)  # the child's ends: ours must close so either side sees EOF
            os.close(evt_w)
        self.cmd: Connection | None = Connection(cmd_w, readable=False)
        self.evt: Connection | None = Connection(evt_r, writable=False)

    def send(self, msg) -> bool:
        if self.cmd is None:
            return False
        try:
            self.cmd.send(msg)
            return True
        except (OSError, EOFError):
            return False

    def receive(self, most: int) -> tuple[list, bool]:
        """Up to `most` messages waiting from the child, and whether its end of the pipe has
        closed (it exited, or died) meanwhile."""
        out: list = []
        try:
            while self.evt is not None and len(out) < most and self.evt.poll():
                out.append(self.evt.recv())
        except (EOFError, OSError):
            if self.evt is not None:
                self.evt.close()
            self.evt = None
            return out, True
        return out, False

    def died(self, what: str, code) -> str:
        """One line: `what` exited unexpectedly, its exit code, and its last word on stderr."""
        why = last_line(self.stderr_file)
        return f"{what} exited unexpectedly (exit code {code})" + (f": {why}" if why else "")

    def stop(self, timeout: float, known: dict | None = None) -> None:
        """Ask it to stop, then end it and every process under it (and `known`: its
        processes seen earlier, pid -> process, orphaned if it was killed)."""
        family = {**(known or {}), **{p.pid: p for p in descendants(self.proc.pid)}}
        self.send(("stop",))
        self.end(list(family.values()), timeout)

    def end(self, family: list, timeout: float) -> None:
        """After asking it to stop: end it and `family`, close the pipes and the stderr file."""
        end_child(self.proc, family, (self.cmd, self.evt), timeout)
        self.cmd = self.evt = None
        if self.stderr_file is not None:
            self.stderr_file.close()


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
