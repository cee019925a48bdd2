"""A dashboard whose terminal goes away ends, and leaves nothing behind: a terminal that
closes, one that freezes (stops reading, so the dashboard's output backs up until its main
thread blocks on it) and then closes, or one frozen when SIGTERM comes.

The dashboard runs on a pseudo-terminal that is not its controlling terminal, so closing it
sends no SIGHUP: the dashboard has to notice the hang-up itself.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time

import pytest
from process_census import kill_session, session_pids
from waiting import budget, wait_until

from partui.tui.dashboard.stopping import STOP_GRACE_S


def _pending(master: int) -> int:
    """Bytes the dashboard wrote that the terminal has not read."""
    return struct.unpack("i", fcntl.ioctl(master, termios.FIONREAD, b"\0\0\0\0"))[0]


def _read_some(master: int, into: bytearray) -> None:
    if select.select([master], [], [], 0.2)[0]:
        into.extend(os.read(master, 65536))


class _Backed:
    """True once the pending output has stopped growing for `still_s` (the dashboard can
    write no more: its output is backed up)."""

    def __init__(self, master: int, still_s: float = 1.5):
        self.master, self.still_s = master, still_s
        self.last, self.since = -1, time.monotonic()

    def __call__(self) -> bool:
        n = _pending(self.master)
        if n != self.last:
            self.last, self.since = n, time.monotonic()
        return n > 0 and time.monotonic() - self.since >= self.still_s


@pytest.mark.parametrize(
    ("terminal", "end", "code"),
    [("reading", "close", 129), ("frozen", "close", 129), ("frozen", "term", 143)],
)
def test_a_dashboard_ends_when_its_terminal_goes(terminal, end, code, tmp_path):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "PARTUI_SNAPSHOT_DIR": str(tmp_path)}
    # live mode on a small layer: the screen changes all the time, so output keeps coming
    args = ["--live", "--layer", "pool1", "--batch", "2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "partui", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        env=env,
        cwd=tmp_path,
    )
    os.close(slave)
    closed = False
    try:
        seen = bytearray()
        wait_until(
            lambda: _read_some(master, seen) or b"LIVE" in seen,
            budget(60),
            message="the dashboard never drew live mode",
        )
        if terminal == "frozen":  # read no more
            wait_until(_Backed(master), budget(60), message="output never backed up")
        if end == "close":
            os.close(master)
            closed = True
        else:
            proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=budget(STOP_GRACE_S + 15)) == code
        wait_until(lambda: not session_pids(proc.pid), budget(10), message="processes left")
    finally:
        kill_session(proc)
        if not closed:
            os.close(master)
