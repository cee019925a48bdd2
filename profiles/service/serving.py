"""The engine serving a queue: submitted configurations run one at a time, in order, on one
Engine; a live configuration runs again whenever nothing waits; a cancel is repeated until
its run ends; every error becomes an event."""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from partui.profiles.records.events import (
    Compiling,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
)
from partui.profiles.run.sampler import IDLE_HZ, SAMPLE_HZ, CpuSampler
from partui.profiles.system import heap

if TYPE_CHECKING:
    from partui.profiles.run.engine import Engine

CANCEL_RETRY_S = 0.02  # a cancel is repeated until the run ends (it may not have started yet)
ROOM_WAIT_S = 0.01  # how often a live run waiting for the reader looks again
TERMINAL = (RunFinished, RunFailed, RunCancelled)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class EngineService:
    """Runs queued configurations on one Engine, on the thread that calls serve()."""

    def __init__(
        self,
        emit,
        sample_hz: float = SAMPLE_HZ,
        also_pids: tuple[int, ...] = (),
        monitor: CpuSampler | None = None,
        compile_ahead: bool = False,
        room=None,
    ):
        """`compile_ahead`: compile the native kernels not in the disk cache yet, a layer at
        a time while idle, and a run's own layers before it (Compiling events). `room()`:
        whether the events' reader keeps up; a live run waits for it (runs asked for do not)."""
        self._emit = emit
        self._room = room
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

    @property
    def idle(self) -> bool:
        """Nothing running, queued or live: every event of the runs asked for was emitted."""
        with self._cv:
            return (
                not self._running and not self._queue and self._live is None and not self._dropped
            )

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
        with self._cv:  # emitted under the lock, so `idle` never sees them half reported
            dropped, self._dropped = self._dropped, []
            for cfg in dropped:
                self._emit(RunCancelled(0, config_of(cfg)))

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
                        if live and self._room is not None and not self._room():
                            self._cv.wait(ROOM_WAIT_S)  # a submit, a stop or a cancel wakes it
                            continue
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
                heap.trim_now_and_then()  # a long live session keeps its size
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
                event = without_streams(event)
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
            self._emit(RunFailed(0, str(exc), config=config_of(cfg)))
        except NotApplicable as exc:
            self._emit(RunFailed(0, f"not applicable: {exc}", config=config_of(cfg)))
        except RunCancelledError:
            if not seen["ended"]:
                emit(RunCancelled(seen["run"], config_of(cfg)))
            return True
        except Exception as exc:  # noqa: BLE001 - any failure is an event; the service goes on
            if not seen["ended"]:
                emit(RunFailed(seen["run"], one_line(exc), config=config_of(cfg)))
        return False

    def _compile(self, layers) -> None:
        for name in [n for n in layers if n in self._to_compile]:
            from partui.kernels.warmup import compile_kernels

            self._emit(Compiling(name, len(self._to_compile)))
            seconds = compile_kernels([name])
            self._to_compile.remove(name)
            self._emit(Compiling(name, len(self._to_compile), done=True, seconds=seconds))


def without_streams(event):
    """The end of a run without its spans and CPU samples: they were sent as they came."""
    result = getattr(event, "result", None)
    if result is None or not (result.spans or result.cpu_samples):
        return event
    return replace(event, result=replace(result, spans=[], cpu_samples=[]))


def config_of(cfg):
    """The RunConfig an event names (None for something that is not one)."""
    from partui.profiles.records.config import RunConfig

    return cfg if isinstance(cfg, RunConfig) else None
