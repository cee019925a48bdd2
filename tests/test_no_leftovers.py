"""No thread or process outlives its Engine: after runs, after Ctrl+C, after a cancel."""

import _thread
import gc
import subprocess
import sys
import textwrap
import threading
import time
import weakref

import psutil
import pytest
from waiting import budget, wait_until

from partui.profiles.records.config import RunConfig
from partui.profiles.records.events import RunStarted
from partui.profiles.records.limits import RunCancelledError
from partui.profiles.run.engine import Engine

HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")


def cmdline(p):
    try:
        return " ".join(p.cmdline())
    except psutil.Error:
        return ""


def running(p):
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def live_children():
    return [p for p in psutil.Process().children(recursive=True) if running(p)]


def assert_nothing_left(threads_before):
    """Back to the thread count we started with; the only child processes left are the
    multiprocessing helpers (one fork server, one resource tracker), which live as long as
    this interpreter (test_helpers_exit_with_the_interpreter shows they go with it)."""
    assert threading.active_count() == threads_before, threading.enumerate()
    others = [
        (p.pid, cmdline(p)) for p in live_children() if not any(h in cmdline(p) for h in HELPERS)
    ]
    assert others == []


def test_runs_leave_nothing_behind():
    before = threading.active_count()
    with Engine() as engine:
        for executor, strategy, workers in [
            ("threads", "batch", 2),
            ("processes", "channel", 2),
            ("processes", "filter", 3),
            ("inline", "spatial", 1),
            ("blas", "none", 2),
            ("threads", "hybrid", 3),
        ]:
            assert engine.run(
                RunConfig(
                    "conv2",
                    strategy=strategy,
                    executor=executor,
                    workers=workers,
                    batch=3,
                    repeats=2,
                )
            ).ok
        assert engine.run(
            RunConfig("network", strategy="pipeline", workers=3, batch=6, repeats=2)
        ).ok
        assert threading.active_count() > before  # the pools were really there
        assert len(live_children()) >= 3
    assert_nothing_left(before)


class Stopper:
    """`stop` called `seconds` after the run has started (its pool up, its inputs made), from
    another thread, as the dashboard's cancel or a Ctrl+C comes; `sent` is when."""

    def __init__(self, seconds, stop):
        self.seconds, self.stop = seconds, stop
        self.sent: float | None = None
        self.timer: threading.Timer | None = None

    def emit(self, event):
        if isinstance(event, RunStarted) and self.timer is None:
            self.timer = threading.Timer(self.seconds, self._fire)
            self.timer.start()

    def _fire(self):
        self.sent = time.monotonic()
        self.stop()

    def took(self) -> float:
        """Seconds from the stop to now."""
        assert self.sent is not None, "the run ended before it was stopped"
        return time.monotonic() - self.sent

    def join(self):
        if self.timer is not None:
            self.timer.join()


@pytest.mark.parametrize(
    "executor,strategy,workers",
    [
        ("threads", "channel", 2),
        ("processes", "batch", 2),
        ("inline", "none", 1),
    ],
)
def test_ctrl_c_stops_the_workers(executor, strategy, workers):
    before = threading.active_count()
    with Engine() as engine:
        engine.executor(executor, workers).start()  # the pool is up: time only the run
        stopper = Stopper(0.3, _thread.interrupt_main)
        with pytest.raises(KeyboardInterrupt):
            cfg = RunConfig(
                "conv2",
                strategy=strategy,
                kernel="loops",
                executor=executor,
                workers=workers,
                batch=32,
                repeats=3,
                warmup=0,
            )
            engine.run(cfg, emit=stopper.emit)
        assert stopper.took() < budget(1.0)
        stopper.join()
    assert_nothing_left(before)


def test_ctrl_c_stops_a_pipeline():
    before = threading.active_count()
    with Engine() as engine:
        stopper = Stopper(0.5, _thread.interrupt_main)
        with pytest.raises(KeyboardInterrupt):
            cfg = RunConfig(
                "network", strategy="pipeline", kernel="loops", workers=3, repeats=3, warmup=0
            )
            engine.run(cfg, emit=stopper.emit)
        assert stopper.took() < budget(1.0)
        stopper.join()
    assert_nothing_left(before)


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_cancel_stops_a_run_and_the_engine_runs_on(executor):
    """The dashboard cancels from another thread; the pools stay up for the next run."""
    before = threading.active_count()
    with Engine() as engine:
        engine.executor(executor, 2).start()
        stopper = Stopper(0.3, engine.cancel)
        with pytest.raises(RunCancelledError):
            engine.run(
                RunConfig(
                    "conv2",
                    kernel="loops",
                    executor=executor,
                    workers=2,
                    batch=32,
                    repeats=3,
                    warmup=0,
                ),
                stopper.emit,
            )
        assert stopper.took() < budget(1.0)
        stopper.join()
        result = engine.run(
            RunConfig(
                "conv2", kernel="loops", executor=executor, workers=2, batch=2, repeats=1, warmup=0
            )
        )
        assert result.ok and len(result.spans) == 2
    assert_nothing_left(before)


def test_helpers_exit_with_the_interpreter():
    """The fork server and resource tracker may outlive Engine.close(), but not the interpreter;
    nothing is reported leaked (shared memory, semaphores) on the way out."""
    script = textwrap.dedent("""
        import psutil, threading
        from partui.profiles.run.engine import Engine
        from partui.profiles.records.config import RunConfig
        if __name__ == "__main__":
            with Engine() as engine:
                for ex in ("processes", "threads"):
                    cfg = RunConfig("conv2", executor=ex, workers=2, batch=4, repeats=2)
                    assert engine.run(cfg).ok
            kids = [p for p in psutil.Process().children(recursive=True)
                    if p.status() != psutil.STATUS_ZOMBIE]
            assert kids and all(any(h in " ".join(p.cmdline()) for h in %r) for p in kids)
            print(" ".join(str(p.pid) for p in kids))
            print(threading.active_count())
    """) % (HELPERS,)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    pids_line, threads_line = proc.stdout.strip().splitlines()
    assert threads_line == "1"
    helpers = [psutil.Process(int(pid)) for pid in pids_line.split() if psutil.pid_exists(int(pid))]
    wait_until(
        lambda: not any(running(p) for p in helpers),
        2.0,
        message=lambda: f"outlived the interpreter: {[p.pid for p in helpers if running(p)]}",
    )


@pytest.mark.parametrize("executor", ["inline", "threads", "threads-dynamic"])
def test_a_run_cancelled_inside_its_tasks_lets_go_of_its_arrays_at_once(executor, monkeypatch):
    """esc while the tasks run: the error's frames held the run's arrays in a reference
    cycle (the error kept by a future or a list in those frames), freed only by a full
    garbage collection, so a live dashboard switching configurations held every cancelled
    run's arrays (tens of MB at batch 512) for minutes. Checked with the collector off."""
    from partui.kernels.forward import loops
    from partui.profiles.executors.base import Executor

    made: list[weakref.ref] = []
    real_arena, real_check = Executor.arena, loops.check_cancel

    def arena(self, shapes):
        got = real_arena(self, shapes)
        made.extend(weakref.ref(a) for a in got.arrays.values())
        return got

    def cancelled_now(cancel):  # as esc lands while a task works
        if cancel is not None:
            cancel.set()
        real_check(cancel)

    monkeypatch.setattr(Executor, "arena", arena)
    monkeypatch.setattr(loops, "check_cancel", cancelled_now)
    cfg = RunConfig(
        "conv1",
        strategy="channel",
        kernel="loops",
        executor=executor,
        workers=1 if executor == "inline" else 2,
        batch=2,
        repeats=1,
    )
    gc.collect()
    gc.disable()
    try:
        with Engine(sample_hz=0) as engine:
            stopped = False
            try:
                engine.run(cfg)
            except RunCancelledError:
                stopped = True
            assert stopped and made
            alive = [r().shape for r in made if r() is not None]
            assert alive == [], f"arrays of the cancelled run still held: {alive}"
    finally:
        gc.enable()
