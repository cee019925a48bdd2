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
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

from partui.profiles.records.events import (
    Compiling,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
)
from partui.profiles.run.sampler import IDLE_HZ, SAMPLE_HZ, CpuSampler

# the engine (numpy, the kernels) is imported when the service starts serving: the child
# process starts its CPU monitor first, so the dashboard's CPU chart fills at once
from partui.profiles.service.commands import serve_commands

if TYPE_CHECKING:
    from partui.profiles.records.config import RunConfig
    from partui.profiles.run.engine import Engine

CANCEL_RETRY_S = 0.02  # a cancel is repeated until the run ends (it may not have started yet)
FLUSH_S = 0.01  # the child sends what it has every 10 ms...
BATCH_MAX = 256  # ...or as soon as this many events wait
FAMILY_S = 2.0  # how often the parent notes the engine's own processes
TERMINAL = (RunFinished, RunFailed, RunCancelled)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class _Service:
    """Runs queued configurations on one Engine, on the thread that calls serve()."""

    def __init__(
        self,
        emit,
        sample_hz: float = SAMPLE_HZ,
        also_pids: tuple[int, ...] = (),
        monitor: CpuSampler | None = None,
        compile_ahead: bool = False,
    ):
        """`compile_ahead`: compile the native kernels not in the disk cache yet, a layer at
        a time while idle, and a run's own layers before it (Compiling events)."""
        self._emit = emit
        self._compile_ahead = compile_ahead
        self._to_compile: list[str] = []
        self._monitor = monitor  # already sampling (the child starts it before any import)
        self._sample_hz = sample_hz
        self._also_pids = also_pids  # partui's other processes (the dashboard), for the monitor
        self._queue: collections.deque = collections.deque()
        self._cv = threading.Condition()
        self._stopping = False
        self._ticket = 0  # counts runs taken from the queue
        self._running = False
        self._dropped: list = []  # dropped by cancel, reported after the current run's end
        self._live = None  # run whenever the queue is empty
        self.engine: Engine | None = None

    def submit(self, cfg) -> None:
        with self._cv:
            self._queue.append(cfg)
            self._cv.notify()

    def set_live(self, cfg) -> None:
        """Run `cfg` again and again while nothing is queued (None: stop after the current run)."""
        with self._cv:
            self._live = cfg
            self._cv.notify()

    def cancel(self, drop_queued: bool = False) -> None:
        with self._cv:
            if drop_queued:
                self._dropped += self._queue
                self._queue.clear()
            ticket = self._ticket if self._running else None
            report_now = ticket is None
        if report_now:
            self._report_dropped()
        else:
            threading.Thread(
                target=self._keep_cancelling, args=(ticket,), name="partui-cancel", daemon=True
            ).start()

    def _keep_cancelling(self, ticket: int) -> None:
        while True:
            with self._cv:
                if not (self._running and self._ticket == ticket):
                    return
            if self.engine is not None:
                self.engine.cancel()
            time.sleep(CANCEL_RETRY_S)

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._queue.clear()
            self._cv.notify()
        self.cancel()

    def _report_dropped(self) -> None:
        with self._cv:
            dropped, self._dropped = self._dropped, []
        for cfg in dropped:
            self._emit(RunCancelled(0, _config_of(cfg)))

    def serve(self) -> None:
        from partui.profiles.run.engine import Engine

        monitor = self._monitor
        if self._sample_hz and monitor is None:
            monitor = CpuSampler({}, self._emit, hz=IDLE_HZ, also_pids=self._also_pids)
            monitor.keep = False  # runs record their own stretch; nothing else is kept
            monitor.start()
        self.engine = Engine(self._sample_hz, monitor=monitor)
        if self._compile_ahead:
            from partui.kernels.model.layers import LAYERS
            from partui.kernels.runtime.jitcache import missing

            self._to_compile = missing(LAYERS)
        try:
            while True:
                with self._cv:
                    while (
                        not self._queue
                        and self._live is None
                        and not self._stopping
                        and not self._to_compile
                    ):
                        self._cv.wait()
                    if self._stopping:
                        return
                    idle = not self._queue and self._live is None
                    if not idle:
                        live = not self._queue
                        cfg = self._live if live else self._queue.popleft()
                        self._ticket += 1
                        self._running = True
                if idle:  # nothing to run: compile the next layer's kernels
                    try:
                        self._compile(self._to_compile[:1])
                    except Exception:  # noqa: BLE001 - the run that needs it will say what failed
                        self._to_compile.pop(0)
                    continue
                try:
                    if not self._run_one(cfg, live) and live:
                        with self._cv:  # a live run that cannot run stops live mode
                            if self._live is cfg:
                                self._live = None
                finally:
                    with self._cv:
                        self._running = False
                self._report_dropped()
        finally:
            if monitor is not None:
                monitor.stop()
            self.engine.close()

    def _run_one(self, cfg, live: bool = False) -> bool:
        """Run one configuration; False when it could not run (bad config, an error)."""
        from partui.kernels.plan.strategies import NotApplicable
        from partui.profiles.records.config import RunConfig
        from partui.profiles.records.limits import ConfigError, RunCancelledError

        seen = {"run": 0, "ended": False}

        def emit(event):
            if isinstance(event, RunStarted):
                seen["run"] = event.run
                if live:
                    event = replace(event, live=True)
            elif isinstance(event, TERMINAL):
                seen["ended"] = True
                event = _without_streams(event)
            self._emit(event)

        try:
            if not isinstance(cfg, RunConfig):
                raise ConfigError(f"submit() takes a RunConfig, got {type(cfg).__name__}")
            # engine.run checks the configuration (once, before any work): a bad one
            # compiles nothing here, its layer is not among the kernels to compile
            if cfg.kernel == "vectorized":
                self._compile(self._to_compile if cfg.strategy == "pipeline" else [cfg.layer])
            assert self.engine is not None  # made in start()
            self.engine.run(cfg, emit=emit)
            return True
        except ConfigError as exc:
            self._emit(RunFailed(0, str(exc), config=_config_of(cfg)))
        except NotApplicable as exc:
            self._emit(RunFailed(0, f"not applicable: {exc}", config=_config_of(cfg)))
        except RunCancelledError:
            if not seen["ended"]:
                emit(RunCancelled(seen["run"], _config_of(cfg)))
            return True
        except Exception as exc:  # noqa: BLE001 - any failure is an event; the service goes on
            if not seen["ended"]:
                emit(RunFailed(seen["run"], one_line(exc), config=_config_of(cfg)))
        return False

    def _compile(self, layers) -> None:
        for name in [n for n in layers if n in self._to_compile]:
            from partui.kernels.warmup import compile_kernels

            self._emit(Compiling(name, len(self._to_compile)))
            seconds = compile_kernels([name])
            self._to_compile.remove(name)
            self._emit(Compiling(name, len(self._to_compile), done=True, seconds=seconds))


def _without_streams(event):
    """The end of a run without its spans and CPU samples: they were sent as they came."""
    result = getattr(event, "result", None)
    if result is None or not (result.spans or result.cpu_samples):
        return event
    return replace(event, result=replace(result, spans=[], cpu_samples=[]))


def _config_of(cfg):
    """The RunConfig an event names (None for something that is not one)."""
    from partui.profiles.records.config import RunConfig

    return cfg if isinstance(cfg, RunConfig) else None


# ---- on a thread -----------------------------------------------------------------


class EngineThread:
    """The engine on a thread of this process; same API as EngineProcess."""

    def __init__(self, sample_hz: float = SAMPLE_HZ, compile_ahead: bool = False):
        self._events: collections.deque = collections.deque()
        self._service = _Service(self._events.append, sample_hz, compile_ahead=compile_ahead)
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


# ---- in a child process ----------------------------------------------------------


class _Batcher:
    """Child side: collect events, send them as lists every FLUSH_S or BATCH_MAX events."""

    def __init__(self, conn):
        self._conn = conn
        self._buf: list = []
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

    def _flush(self) -> None:
        with self._lock:
            batch, self._buf = self._buf, []
        if batch:
            self._conn.send(batch)

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


def _child_main(cmd_fd: int, evt_fd: int, sample_hz: float, compile_ahead: bool = False) -> None:
    """The engine process: a control thread takes commands, the main thread runs the engine."""
    try:
        _serve_child(cmd_fd, evt_fd, sample_hz, compile_ahead)
    except KeyboardInterrupt:  # SIGTERM: the engine has stopped its workers on the way out
        pass


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _serve_child(cmd_fd: int, evt_fd: int, sample_hz: float, compile_ahead: bool) -> None:
    # Ctrl+C and a closed terminal belong to the parent, which closes us (or dies, and its
    # end of the command pipe tells us); SIGTERM stops the engine the way Ctrl+C stops a
    # headless run: workers stopped, shared memory unlinked.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    cmd_conn, evt_conn = Connection(cmd_fd, writable=False), Connection(evt_fd, readable=False)
    evt_conn.send({"hello": os.getpid(), "textual": "textual" in sys.modules})
    batcher = _Batcher(evt_conn)
    monitor = None
    if sample_hz:  # the dashboard (our parent) counts as partui, not as another program
        monitor = CpuSampler({}, batcher.add, hz=IDLE_HZ, also_pids=(os.getppid(),))
        monitor.keep = False
        monitor.start()
    service = _Service(batcher.add, sample_hz, monitor=monitor, compile_ahead=compile_ahead)

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


_CHILD = (
    "import sys; from partui.profiles.service.engine import _child_main; "
    "_child_main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == '1')"
)


class EngineProcess:
    """The engine in a child process, streaming events back in small batches.

    The child is a fresh interpreter started with `python -c` (spawn by hand), not a
    multiprocessing Process: spawn and forkserver children import the parent's __main__,
    and the dashboard's __main__ may import textual. Commands and events travel as
    pickles over two pipes (multiprocessing.connection).
    """

    def __init__(
        self, sample_hz: float = SAMPLE_HZ, stderr=subprocess.DEVNULL, compile_ahead: bool = False
    ):
        """`compile_ahead`: the child compiles native kernels before need (Compiling events)."""
        self._sample_hz = sample_hz
        self._compile_ahead = compile_ahead
        self._stderr = stderr  # the child's stderr: not the dashboard's terminal by default
        # ...but kept, so a child that dies can say why in one line
        self._stderr_file = None
        if stderr == subprocess.DEVNULL:
            import tempfile  # here: it loads shutil, and this module loads with the dashboard

            self._stderr_file = tempfile.TemporaryFile()
        self._proc: subprocess.Popen | None = None
        self._cmd: Connection | None = None
        self._evt: Connection | None = None
        self._pending: collections.deque = collections.deque()
        self._closed = False
        self._exit_reported = False
        self._family: dict[int, object] = {}  # the child's own processes, last seen
        self._family_at = 0.0
        self.child_info: dict | None = None  # {"hello": pid, "textual": loaded?} once seen

    def start(self) -> None:
        if self._proc is not None:
            return
        cmd_r, cmd_w = os.pipe()
        evt_r, evt_w = os.pipe()
        try:
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    "-P",  # the current folder first on sys.path could shadow partui
                    "-c",
                    _CHILD,
                    str(cmd_r),
                    str(evt_w),
                    repr(self._sample_hz),
                    "1" if self._compile_ahead else "0",
                ],
                pass_fds=(cmd_r, evt_w),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr_file if self._stderr_file is not None else self._stderr,
            )
        finally:
            os.close(cmd_r)  # the child's ends: ours must close so either side sees EOF
            os.close(evt_w)
        self._cmd = Connection(cmd_w, readable=False)
        self._evt = Connection(evt_r, writable=False)
        atexit.register(self.close)

    def _send(self, msg) -> bool:
        if self._cmd is None:
            return False
        try:
            self._cmd.send(msg)
            return True
        except (OSError, EOFError, AttributeError):
            return False

    def submit(self, cfg: RunConfig) -> None:
        if self._closed or self._proc is None or not self._send(("run", cfg)):
            self._pending.append(
                RunFailed(0, "the engine process is not running", config=_config_of(cfg))
            )

    def set_live(self, cfg: RunConfig | None) -> None:
        """Run `cfg` back to back whenever nothing is queued; None stops after the current run."""
        if not self._closed and self._proc is not None:
            self._send(("live", cfg))

    def cancel(self, drop_queued: bool = False) -> None:
        """Stop the current run (RunCancelled follows); `drop_queued` also drops waiting ones."""
        if not self._closed and self._proc is not None:
            self._send(("cancel", drop_queued))

    def _receive(self) -> None:
        if self._evt is None:
            return
        try:
            while self._evt.poll():
                msg = self._evt.recv()
                if isinstance(msg, dict) and "hello" in msg:
                    self.child_info = msg
                else:
                    self._pending.extend(msg)
        except (EOFError, OSError):
            self._evt.close()
            self._evt = None
        if self._evt is None and not self._closed and not self._exit_reported:
            self._exit_reported = True
            try:
                code = self._proc.wait(0.5) if self._proc is not None else None
            except subprocess.TimeoutExpired:
                code = None
            why = last_line(self._stderr_file)
            self._pending.append(
                RunFailed(
                    0,
                    f"the engine process exited unexpectedly (exit code {code})"
                    + (f": {why}" if why else ""),
                )
            )

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
        if self._proc is None or now - self._family_at < FAMILY_S or not self.alive:
            return
        self._family_at = now
        self._family.update((p.pid, p) for p in descendants(self._proc.pid))

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """Block until the child has started (tests; the dashboard just drains)."""
        deadline = time.monotonic() + timeout
        while self.child_info is None and self._evt is not None and time.monotonic() < deadline:
            if self._evt.poll(0.05):
                self._receive()
        return self.child_info is not None

    def close(self, timeout: float = 2.0) -> None:
        """Stop the child and every process it made (pools, fork server); safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._proc is None:
            return
        atexit.unregister(self.close)
        family = list({**self._family, **{p.pid: p for p in descendants(self._proc.pid)}}.values())
        self._send(("stop",))
        end_child(self._proc, family, (self._cmd, self._evt), timeout)
        self._cmd = self._evt = None
        if self._stderr_file is not None:
            self._stderr_file.close()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()


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
    _reap(family, timeout)
    for conn in conns:
        if conn is not None:
            conn.close()


def _reap(procs: list, timeout: float) -> None:
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
