"""No thread or process outlives its Engine: after runs, after Ctrl+C, after a cancel."""

import _thread
import subprocess
import sys
import textwrap
import threading
import time

import psutil
import pytest

from partui.profiles.records.config import RunConfig
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
                RunConfig("conv2", strategy, "vectorized", executor, workers, 3, 2, 1)
            ).ok
        assert engine.run(RunConfig("network", "pipeline", "vectorized", "threads", 3, 6, 2, 1)).ok
        assert threading.active_count() > before  # the pools were really there
        assert len(live_children()) >= 3
    assert_nothing_left(before)


def interrupt_after(seconds):
    timer = threading.Timer(seconds, _thread.interrupt_main)
    timer.start()
    return timer


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
        timer = interrupt_after(0.3)
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            engine.run(RunConfig("conv2", strategy, "loops", executor, workers, 32, 3, 0))
        assert time.monotonic() - t0 < 0.3 + 1.0
        timer.join()
    assert_nothing_left(before)


def test_ctrl_c_stops_a_pipeline():
    before = threading.active_count()
    with Engine() as engine:
        timer = interrupt_after(0.5)
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            engine.run(RunConfig("network", "pipeline", "loops", "threads", 3, 64, 3, 0))
        assert time.monotonic() - t0 < 0.5 + 1.0
        timer.join()
    assert_nothing_left(before)


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_cancel_stops_a_run_and_the_engine_runs_on(executor):
    """The dashboard cancels from another thread; the pools stay up for the next run."""
    before = threading.active_count()
    with Engine() as engine:
        engine.executor(executor, 2).start()
        timer = threading.Timer(0.3, engine.cancel)
        timer.start()
        t0 = time.monotonic()
        with pytest.raises(RunCancelledError):
            engine.run(RunConfig("conv2", "batch", "loops", executor, 2, 32, 3, 0))
        assert time.monotonic() - t0 < 0.3 + 1.0
        timer.join()
        result = engine.run(RunConfig("conv2", "batch", "loops", executor, 2, 2, 1, 0))
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
                    assert engine.run(RunConfig("conv2", "batch", "vectorized", ex, 2, 4, 2, 1)).ok
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
    deadline = time.monotonic() + 2.0
    while any(running(p) for p in helpers) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not [p.pid for p in helpers if running(p)]
