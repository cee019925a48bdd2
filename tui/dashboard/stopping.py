"""How the dashboard stops on SIGTERM, SIGHUP, `kill -INT`, or a terminal that went away.

The event loop does the stopping: it ends the engine and its workers, then exits as q does.
The loop can be stuck, though. Textual writes to the terminal through a bounded queue: once
its writer thread is blocked on a frozen terminal, or dead of a closed one, the next screen
update blocks the main thread for ever, and a signal handed to the loop would wait with it.
So the signal's own handler (which Python runs even then) only notes the signal and wakes
the loop, and a watchdog thread ends the process STOP_GRACE_S later if the orderly exit has
not. The watchdog also takes a hung-up terminal for SIGHUP: a terminal that closed without
the signal reaching partui leaves Textual's input thread spinning on it.
(Ctrl+C in the dashboard is a key, not a signal.)
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import threading
import time
from collections.abc import Callable

STOP_GRACE_S = 3.0  # after a stop signal, the orderly exit gets this long
WATCH_S = 0.5  # how often the watchdog looks at the terminal and the clock
SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
_GONE = select.POLLHUP | select.POLLERR | select.POLLNVAL


class StopWatch:
    """Calls `stop(signal number)` on the event loop when a stop signal arrives or the
    terminal on `terminal_fd` hangs up (None: no terminal to watch), and with `end_process`
    ends the process with 128 + that number if it is still alive STOP_GRACE_S later (not
    under a test, which shares the process)."""

    def __init__(
        self, stop: Callable[[int], None], terminal_fd: int | None, end_process: bool = True
    ) -> None:
        self._stop = stop
        self._fd = terminal_fd
        self._end_process = end_process
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: dict = {}
        self._signum: int | None = None
        self._deadline = 0.0
        self._done = threading.Event()

    def install(self) -> None:
        """From the event loop's thread (the main one): handlers in, the watchdog started."""
        self._loop = asyncio.get_running_loop()
        for sig in SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_signal)
        threading.Thread(target=self._watch, name="partui-stopwatch", daemon=True).start()

    def uninstall(self) -> None:
        """The app has ended: the handlers it replaced go back; a stop under way goes on."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
        if self._signum is None:
            self._done.set()

    @property
    def stopping(self) -> int | None:
        return self._signum

    def note(self, signum: int) -> None:
        """Stop now (the first signal counts; later ones change nothing)."""
        if self._signum is not None:
            return
        self._deadline = time.monotonic() + STOP_GRACE_S
        self._signum = signum
        if self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self._stop, signum)
            except RuntimeError:  # the loop has closed: the watchdog ends the process
                pass

    def _on_signal(self, signum, frame) -> None:
        self.note(signum)

    def _watch(self) -> None:
        while not self._done.wait(WATCH_S):
            if self._signum is None and self.terminal_gone():
                self.note(signal.SIGHUP)
            if self._signum is not None and time.monotonic() >= self._deadline:
                if self._end_process:
                    os._exit(128 + self._signum)
                return

    def terminal_gone(self) -> bool:
        """The terminal watched has hung up (closed)."""
        if self._fd is None:
            return False
        poll = select.poll()
        poll.register(self._fd, 0)  # hang-up and errors are always reported
        return any(mask & _GONE for _, mask in poll.poll(0))


def terminal_fd() -> int | None:
    """The terminal the dashboard reads its keys from, if stdin is one."""
    try:
        return 0 if os.isatty(0) else None
    except OSError:
        return None
