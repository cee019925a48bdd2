"""The engine's child process: a control thread takes commands from the parent, the main
thread serves runs, and events go back in batches every FLUSH_S or BATCH_MAX events."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection

from partui.profiles.run.sampler import IDLE_HZ, CpuSampler

# the engine (numpy, the kernels) is imported when the service starts serving: the child
# process starts its CPU monitor first, so the dashboard's CPU chart fills at once
from partui.profiles.service.commands import serve_commands
from partui.profiles.service.serving import EngineService

FLUSH_S = 0.01  # the child sends what it has every 10 ms...
BATCH_MAX = 256  # ...or as soon as this many events wait
# a live run starts only while fewer events than this wait unsent: a dashboard that is
# behind stops reading, the pipe fills, and live mode waits for it
ROOM_EVENTS = 4 * BATCH_MAX


class _Batcher:
    """Child side: collect events, send them as lists every FLUSH_S or BATCH_MAX events."""

    def __init__(self, conn):
        self._conn = conn
        self._buf: list = []
        self._sending = 0  # events of the batch in the pipe's hands (send blocks when full)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._loop, name="partui-events", daemon=True)
        self._thread.start()

    def add(self, event) -> None:
        with self._lock:
            self._buf.append(event)
            full = len(self._buf) >= BATCH_MAX
        if full:
            self._wake.set()

    def room(self) -> bool:
        """Whether the reader keeps up: few events wait to be sent or are being sent."""
        with self._lock:
            return len(self._buf) + self._sending < ROOM_EVENTS

    def _flush(self) -> None:
        with self._lock:
            batch, self._buf = self._buf, []
            self._sending = len(batch)
        try:
            if batch:
                self._conn.send(batch)
        finally:
            with self._lock:
                self._sending = 0

    def _loop(self) -> None:
        try:
            while not self._done:
                self._wake.wait(FLUSH_S)
                self._wake.clear()
                self._flush()
        except (OSError, EOFError):  # the parent went away
            pass

    def close(self) -> None:
        self._done = True
        self._wake.set()
        self._thread.join()
        try:
            self._flush()
        except (OSError, EOFError):
            pass


def child_main(cmd_fd: int, evt_fd: int, sample_hz: float, compile_ahead: bool = False) -> None:
    """The engine process: a control thread takes commands, the main thread runs the engine."""
    try:
        serve_child(cmd_fd, evt_fd, sample_hz, compile_ahead)
    except KeyboardInterrupt:  # SIGTERM: the engine has stopped its workers on the way out
        pass


def raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def serve_child(cmd_fd: int, evt_fd: int, sample_hz: float, compile_ahead: bool) -> None:
    # Ctrl+C and a closed terminal belong to the parent, which closes us (or dies, and its
    # end of the command pipe tells us); SIGTERM stops the engine the way Ctrl+C stops a
    # headless run: workers stopped, shared memory unlinked.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, raise_interrupt)
    cmd_conn, evt_conn = Connection(cmd_fd, writable=False), Connection(evt_fd, readable=False)
    evt_conn.send({"hello": os.getpid(), "textual": "textual" in sys.modules})
    batcher = _Batcher(evt_conn)
    monitor = None
    if sample_hz:  # the dashboard (our parent) counts as partui, not as another program
        monitor = CpuSampler({}, batcher.add, hz=IDLE_HZ, also_pids=(os.getppid(),))
        monitor.keep = False
        monitor.start()
    service = EngineService(
        batcher.add, sample_hz, monitor=monitor, compile_ahead=compile_ahead, room=batcher.room
    )

    handlers: dict[str, Callable] = {
        "run": service.submit,
        "live": service.set_live,
        "cancel": service.cancel,
    }
    serve_commands(cmd_conn, handlers, service.stop, "partui-control")
    try:
        service.serve()
    finally:
        batcher.close()
