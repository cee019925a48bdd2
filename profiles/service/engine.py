"""The engine as a service: submit configurations, read their events in small batches.

    EngineProcess  the engine in a child process (a fresh interpreter that never imports
                   textual), events sent back over a pipe every few milliseconds.
                   The dashboard uses it so its rendering never competes with the kernels
                   for this interpreter's GIL.
    EngineThread   the same API with the engine on a thread of this process (tests, headless).

Both run submitted configurations one at a time, in order. Every submission ends with
exactly one RunFinished, RunFailed or RunCancelled, in submission order. A live
configuration (set_live) runs again and again whenever nothing is queued, back to back:
an idle gap between runs would make the next ones slower (cold caches and threads) and
the live figures would not match a headless run; a bad
configuration gives RunFailed(run=0, ...) instead of an exception, and so does any error
in the engine (the service keeps serving).

CPU samples never stop: CpuSample events arrive at IDLE_HZ between runs and at >= 10 Hz
while a run works. Spans and samples travel once: the RunFinished / RunFailed result comes
without them (its `spans` and `cpu_samples` are empty); a consumer keeps the timed SpanDone events
and the CpuSample events between RunStarted and the run's end (tui.model does).
"""

from __future__ import annotations

import atexit
import collections
import os
import subprocess
import threading
import time
from typing import TYPE_CHECKING

from partui.profiles.records.events import RunFailed
from partui.profiles.run.sampler import SAMPLE_HZ
from partui.profiles.service.children import KEEP, Child, descendants
from partui.profiles.service.serving import EngineService, config_of

if TYPE_CHECKING:
    from partui.profiles.records.config import RunConfig

FAMILY_S = 2.0  # how often the parent notes the engine's own processes


class EngineThread:
    """The engine on a thread of this process; same API as EngineProcess."""

    def __init__(self, sample_hz: float = SAMPLE_HZ, compile_ahead: bool = False):
        self._events: collections.deque = collections.deque()
        self._service = EngineService(self._events.append, sample_hz, compile_ahead=compile_ahead)
        self._thread: threading.Thread | None = None
        self._closed = False

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._service.serve, name="partui-engine", daemon=True
            )
            self._thread.start()

    def submit(self, cfg: RunConfig) -> None:
        self._service.submit(cfg)

    def set_live(self, cfg: RunConfig | None) -> None:
        """Run `cfg` back to back whenever nothing is queued; None stops after the current run."""
        self._service.set_live(cfg)

    def cancel(self, drop_queued: bool = False) -> None:
        """Stop the current run (RunCancelled follows); `drop_queued` also drops waiting ones."""
        self._service.cancel(drop_queued)

    def drain(self, max_events: int = 1000) -> list:
        out: list = []
        while self._events and len(out) < max_events:
            out.append(self._events.popleft())
        return out

    @property
    def settled(self) -> bool:
        """Idle, with every event drained: what was drained is all there will be."""
        return self._service.idle and not self._events

    def close(self, timeout: float = 2.0) -> None:
        if self._closed:
            return
        self._closed = True
        self._service.stop()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def pid(self) -> int:
        return os.getpid()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()


_CHILD = (
    "import sys; from partui.profiles.service.engine_child import child_main; "
    "child_main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == '1')"
)


class EngineProcess:
    """The engine in a child process, streaming events back in small batches.

    The child is a fresh interpreter started with `python -c` (spawn by hand), not a
    multiprocessing Process: spawn and forkserver children import the parent's __main__,
    and the dashboard's __main__ may import textual. Commands and events travel as
    pickles over two pipes (multiprocessing.connection).
    """

    def __init__(self, sample_hz: float = SAMPLE_HZ, stderr=KEEP, compile_ahead: bool = False):
        """`compile_ahead`: the child compiles native kernels before need (Compiling events).
        `stderr`: the child's (Child's; not the dashboard's terminal by default)."""
        self._sample_hz = sample_hz
        self._compile_ahead = compile_ahead
        self._stderr = stderr
        self._child: Child | None = None
        self._pending: collections.deque = collections.deque()
        self._closed = False
        self._exit_reported = False
        self._family: dict[int, object] = {}  # the child's own processes, last seen
        self._family_at = 0.0
        self.child_info: dict | None = None  # {"hello": pid, "textual": loaded?} once seen

    def start(self) -> None:
        if self._child is not None:
            return
        args = [repr(self._sample_hz), "1" if self._compile_ahead else "0"]
        self._child = Child(_CHILD, args, self._stderr)
        atexit.register(self.close)

    def _send(self, msg) -> bool:
        return self._child is not None and self._child.send(msg)

    def submit(self, cfg: RunConfig) -> None:
        if self._closed or not self._send(("run", cfg)):
            self._pending.append(
                RunFailed(0, "the engine process is not running", config=config_of(cfg))
            )

    def set_live(self, cfg: RunConfig | None) -> None:
        """Run `cfg` back to back whenever nothing is queued; None stops after the current run."""
        if not self._closed:
            self._send(("live", cfg))

    def cancel(self, drop_queued: bool = False) -> None:
        """Stop the current run (RunCancelled follows); `drop_queued` also drops waiting ones."""
        if not self._closed:
            self._send(("cancel", drop_queued))

    def _receive(self) -> None:
        child = self._child
        if child is None or child.evt is None:
            return
        try:
            while child.evt.poll():
                msg = child.evt.recv()
                if isinstance(msg, dict) and "hello" in msg:
                    self.child_info = msg
                else:
                    self._pending.extend(msg)
        except (EOFError, OSError):
            child.evt.close()
            child.evt = None
        if child.evt is None and not self._closed and not self._exit_reported:
            self._exit_reported = True
            try:
                code = child.proc.wait(0.5)
            except subprocess.TimeoutExpired:
                code = None
            self._pending.append(RunFailed(0, child.died("the engine process", code)))

    def drain(self, max_events: int = 1000) -> list:
        self._receive()
        self._note_family()
        out: list = []
        while self._pending and len(out) < max_events:
            out.append(self._pending.popleft())
        return out

    def _note_family(self) -> None:
        """Remember the child's processes (pools, fork server) every FAMILY_S: if the child
        is killed, they are orphans no process tree leads to any more, and close() ends them."""
        now = time.monotonic()
        if self._child is None or now - self._family_at < FAMILY_S or not self.alive:
            return
        self._family_at = now
        self._family.update((p.pid, p) for p in descendants(self._child.proc.pid))

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """Block until the child has started (tests; the dashboard just drains)."""
        deadline = time.monotonic() + timeout
        while self.child_info is None and time.monotonic() < deadline:
            evt = self._child.evt if self._child is not None else None
            if evt is None:
                break
            if evt.poll(0.05):
                self._receive()
        return self.child_info is not None

    def close(self, timeout: float = 2.0) -> None:
        """Stop the child and every process it made (pools, fork server); safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._child is None:
            return
        atexit.unregister(self.close)
        self._child.stop(timeout, self._family)

    @property
    def pid(self) -> int | None:
        return self._child.proc.pid if self._child is not None else None

    @property
    def alive(self) -> bool:
        return self._child is not None and self._child.proc.poll() is None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()
