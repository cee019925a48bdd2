"""Training runs for the dashboard: in a child process (or a thread, for tests), events on a queue.

The dashboard never trains in its own interpreter (chart drawing holds the GIL).
A run trains epoch by epoch; before each epoch it takes the newest settings
sent with `update()`, so a change applies at the next epoch and the run goes
on from the weights learned so far. Events, in order:

    ("step", StepDone)  ("epoch", EpochReport, [Span] of a recent step)  ("done", interrupted)
    ("error", one-line message)
and on Dask ("dask", {...}) (service.training_dask).
"""

from __future__ import annotations

import atexit
import queue
import signal
import threading
from dataclasses import replace
from multiprocessing.connection import Connection

from partui.profiles.executors.base import WorkerLost
from partui.profiles.records.events import StepDone
from partui.profiles.records.train_config import TrainConfig
from partui.profiles.service.children import Child
from partui.profiles.service.commands import serve_commands
from partui.profiles.service.training_dask import DaskForRun
from partui.profiles.train.trainer import Trainer


def train_loop(cfg_dict: dict, events, stop, settings) -> None:
    """Run the training `cfg_dict` describes, epoch by epoch, posting events; `stop` ends it."""
    dask = DaskForRun(events)
    try:
        from partui.profiles.train import datasets

        cfg = TrainConfig(**cfg_dict)
        cfg.check()
        data = (
            datasets.load_emnist_letters(cfg.data, cfg.train_size, cfg.test_size)
            if cfg.data
            else datasets.builtin_letters(cfg.train_size, cfg.test_size, cfg.seed)
        )
        params, steps, elapsed, images = None, 0, 0.0, 0
        for epoch in range(1, cfg.epochs + 1):
            while True:  # the newest settings win
                try:
                    cfg = replace(TrainConfig(**settings.get_nowait()), epochs=cfg.epochs)
                except queue.Empty:
                    break
            base_steps, base_s, base_images = steps, elapsed, images

            def emit(ev, base_steps=base_steps, base_s=base_s, base_images=base_images):
                if isinstance(ev, StepDone):
                    events.put(
                        (
                            "step",
                            replace(
                                ev,
                                step=ev.step + base_steps,
                                epoch=epoch,
                                elapsed_s=ev.elapsed_s + base_s,
                                images=ev.images + base_images,
                            ),
                        )
                    )

            one = replace(cfg, epochs=1)
            trainer = Trainer(
                one, data, emit=emit, stop=stop, params=params, executor=dask.for_config(one)
            )
            result = trainer.run()
            params = trainer.params
            lost = dask.report(result.dask)
            if result.epochs:
                report = replace(
                    result.epochs[-1], epoch=epoch, elapsed_s=result.epochs[-1].elapsed_s + base_s
                )
                steps += report.steps
                images += report.images
                elapsed = report.elapsed_s
                last = max((s.repeat for s in result.spans), default=None)
                recent = [s for s in result.spans if s.repeat == last]
                events.put(("epoch", report, recent, cfg.to_dict()))
            if lost:  # as `partui train` says it
                events.put(("error", f"training stopped: {lost}"))
                return
            if result.interrupted or stop.is_set():
                events.put(("done", True))
                return
        events.put(("done", False))
    except WorkerLost as exc:  # lost while a Dask epoch set up or ended: as mid-epoch
        events.put(("error", f"training stopped: {exc}"))
    except Exception as exc:  # one line for the dashboard, never a traceback
        events.put(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        dask.close()


class _Sender:
    """A queue-like end of the event pipe (the child's)."""

    def __init__(self, conn):
        self._conn, self._lock = conn, threading.Lock()

    def put(self, item) -> None:
        with self._lock:
            try:
                self._conn.send(item)
            except (OSError, EOFError):  # the dashboard is gone
                pass


def _child_main(cmd_fd: int, evt_fd: int, cfg_repr: str) -> None:
    """The training process: a control thread takes settings and stop, the main thread trains."""
    import ast

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C belongs to the dashboard, which stops us
    cmd_conn, evt_conn = Connection(cmd_fd, writable=False), Connection(evt_fd, readable=False)
    stop, settings = threading.Event(), queue.Queue[dict]()

    serve_commands(cmd_conn, {"settings": settings.put}, stop.set, "partui-train-control")
    train_loop(ast.literal_eval(cfg_repr), _Sender(evt_conn), stop, settings)


_CHILD = (
    "import sys; from partui.profiles.service.training import _child_main; "
    "_child_main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])"
)


class TrainProcess:
    """A training run in a child process (service.children.Child), events back as pickles
    over a pipe."""

    def __init__(self):
        self._child: Child | None = None
        self._closed = False

    def start(self, cfg: TrainConfig) -> None:
        self._child = Child(_CHILD, [repr(cfg.to_dict())])
        atexit.register(self.close)

    def _send(self, msg) -> None:
        if self._child is not None:
            self._child.send(msg)

    def update(self, cfg: TrainConfig) -> None:
        self._send(("settings", cfg.to_dict()))

    def stop(self) -> None:
        self._send(("stop",))

    def drain(self, most: int = 500) -> list:
        if self._child is None:
            return []
        out, ended = self._child.receive(most)
        code = self._child.proc.poll() if ended else None
        if ended and not self._closed and code not in (0, None):
            out.append(("error", self._child.died("the training process", code)))
        return out

    @property
    def alive(self) -> bool:
        return self._child is not None and self._child.proc.poll() is None

    def close(self, timeout: float = 5.0) -> None:
        """Stop the child and every process it made (a pool of workers); safe to call twice."""
        if self._closed or self._child is None:
            return
        self._closed = True
        atexit.unregister(self.close)
        self._child.stop(timeout)


class TrainThread:
    """The same on a thread of this process (tests: no process start-up)."""

    def __init__(self):
        self.events = queue.Queue()
        self.stop_event = threading.Event()
        self.settings = queue.Queue()
        self._proc = None

    def update(self, cfg: TrainConfig) -> None:
        self.settings.put(cfg.to_dict())

    def stop(self) -> None:
        self.stop_event.set()

    def drain(self, most: int = 500) -> list:
        out: list = []
        for _ in range(most):
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                break
        return out

    def start(self, cfg: TrainConfig) -> None:
        self._proc = threading.Thread(
            target=train_loop,
            daemon=True,
            name="partui-train",
            args=(cfg.to_dict(), self.events, self.stop_event, self.settings),
        )
        self._proc.start()

    def close(self, timeout: float = 5.0) -> None:
        self.stop()
        if self._proc is not None:
            self._proc.join(timeout)
