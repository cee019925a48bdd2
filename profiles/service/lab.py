"""Lab experiments for the dashboard: in a child process (or a thread, for tests), points on
a pipe.

An experiment's kernels keep cores busy for seconds; run in the dashboard's interpreter they
would be counted as the dashboard's CPU and compete with its drawing. Events, in order:

    ("point", MemPoint) ...  then ("done", ExperimentResult) or ("error", one-line message)
"""

from __future__ import annotations

import atexit
import queue
import signal
import threading
from multiprocessing.connection import Connection

from partui.profiles.service.children import Child
from partui.profiles.service.commands import serve_commands


def lab_loop(name: str, quick: bool, events, cancel: threading.Event) -> None:
    """Run experiment `name`, posting its points and then its result; `cancel` stops it."""
    from partui.profiles.lab.runner import run_experiment

    try:
        result = run_experiment(
            name, emit=lambda p: events.put(("point", p)), cancel=cancel, quick=quick
        )
        events.put(("done", result))
    except Exception as exc:  # one line for the dashboard, never a traceback
        events.put(("error", str(exc)))


class PipeSender:
    """A queue-like end of the event pipe (the child's)."""

    def __init__(self, conn: Connection):
        self._conn, self._lock = conn, threading.Lock()

    def put(self, item) -> None:
        with self._lock:
            try:
                self._conn.send(item)
            except (OSError, EOFError):  # the dashboard is gone
                pass


def child_main(cmd_fd: int, evt_fd: int, name: str, quick: str) -> None:
    """The lab process: a control thread waits for stop, the main thread measures."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C belongs to the dashboard
    cmd_conn, evt_conn = Connection(cmd_fd, writable=False), Connection(evt_fd, readable=False)
    cancel = threading.Event()
    serve_commands(cmd_conn, {}, cancel.set, "partui-lab-control")
    lab_loop(name, quick == "1", PipeSender(evt_conn), cancel)


_CHILD = (
    "import sys; from partui.profiles.service.lab import child_main; "
    "child_main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4])"
)


class LabProcess:
    """One experiment in a child process (service.children.Child), events back as pickles
    over a pipe."""

    def __init__(self) -> None:
        self._child: Child | None = None
        self._closed = False

    @property
    def pid(self) -> int | None:
        return self._child.proc.pid if self._child is not None else None

    def start(self, name: str, quick: bool = False) -> None:
        self._child = Child(_CHILD, [name, "1" if quick else "0"])
        atexit.register(self.close)

    def stop(self) -> None:
        if self._child is not None:
            self._child.send(("stop",))

    def drain(self, most: int = 500) -> list:
        if self._child is None:
            return []
        out, ended = self._child.receive(most)
        if ended and not self._closed and not any(ev[0] in ("done", "error") for ev in out):
            out.append(("error", self._child.died("the lab process", self._child.proc.poll())))
        return out

    def close(self, timeout: float = 5.0) -> None:
        """Stop the child and every process it made; safe to call twice."""
        if self._closed or self._child is None:
            return
        self._closed = True
        atexit.unregister(self.close)
        self._child.stop(timeout)


class LabThread:
    """The same on a thread of this process (tests: no process start-up)."""

    pid = None

    def __init__(self) -> None:
        self.events: queue.Queue = queue.Queue()
        self.cancel = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, name: str, quick: bool = False) -> None:
        self._thread = threading.Thread(
            target=lab_loop,
            args=(name, quick, self.events, self.cancel),
            daemon=True,
            name="partui-lab",
        )
        self._thread.start()

    def stop(self) -> None:
        self.cancel.set()

    def drain(self, most: int = 500) -> list:
        out: list = []
        while len(out) < most:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                break
        return out

    def close(self, timeout: float = 5.0) -> None:
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout)
