"""The one timed-repeat loop (profiles/repeats.py) that forward runs, backward and training
passes and the Dask training step share."""

from __future__ import annotations

import signal
import threading

import pytest

from partui.kernels.runtime.scratch import Cancelled
from partui.profiles.executors.base import WorkerLost
from partui.profiles.records.config import RunConfig
from partui.profiles.records.events import RepeatDone, RunCancelled, RunFailed, RunFinished, Span
from partui.profiles.records.limits import RunCancelledError
from partui.profiles.records.results import RunResult
from partui.profiles.run.repeats import report, stopped_runs_reported, timed_repeats


def span(rep: int, worker: int = 0, ms: float = 1.0) -> Span:
    return Span(worker, 1, 0, int(ms * 1e6), 1, 0, 0, rep, 7)


class Marks:
    """A sampler stand-in: worker CPU seconds, read at the start and end of the timed repeats."""

    def __init__(self):
        self.reads = [{0: 1.0, 1: 2.0}, {0: 1.004, 1: 2.001}]

    def worker_cpu(self):
        return self.reads.pop(0)


def test_warmups_run_untimed_and_every_repeat_is_announced():
    events, calls = [], []
    timed = timed_repeats(
        7,
        RunConfig("conv2", warmup=2, repeats=3),
        threading.Event(),
        events.append,
        one=lambda rep: calls.append(("one", rep)) or [span(rep), span(rep, 1, 2.0)],
        before=lambda rep: calls.append(("before", rep)),
        sampler=Marks(),
    )
    assert calls == [(k, rep) for rep in range(-2, 3) for k in ("before", "one")]
    assert [e.repeat for e in events if isinstance(e, RepeatDone)] == [-2, -1, 0, 1, 2]
    assert all(e.run == 7 for e in events)
    assert len(timed.times_ms) == len(timed.starts_ns) == 3
    assert timed.starts_ns == sorted(timed.starts_ns) and all(t >= 0 for t in timed.times_ms)
    assert [s.repeat for s in timed.spans] == [0, 0, 1, 1, 2, 2]  # the warm-ups' are dropped
    # 3 repeats x 1 ms busy on worker 0 against 4 ms of CPU; worker 1: 6 ms busy, 1 ms CPU
    assert timed.on_cpu_ratio(2) == pytest.approx([4 / 3, 1 / 6])


def test_after_replaces_a_repeat_s_spans_and_no_marks_means_no_ratio():
    timed = timed_repeats(
        1,
        RunConfig("conv2", warmup=0, repeats=2),
        threading.Event(),
        lambda e: None,
        one=lambda rep: [span(rep)],
        after=lambda rep, spans: spans + [span(rep, 1)],
    )
    assert [(s.repeat, s.worker) for s in timed.spans] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert timed.on_cpu_ratio(2) == []


def test_the_cancel_flag_is_checked_before_every_repeat():
    cancel, done = threading.Event(), []

    def one(rep):
        done.append(rep)
        if rep == 1:
            cancel.set()  # work that never checks the flag itself
        return []

    with pytest.raises(Cancelled):
        timed_repeats(1, RunConfig("conv2", warmup=1, repeats=5), cancel, lambda e: None, one)
    assert done == [-1, 0, 1]


class Stopper:
    def __init__(self):
        self.stopped = []

    def stop_now(self, ex):
        self.stopped.append(ex)


@pytest.mark.parametrize(
    "raised,expected,event",
    [
        (Cancelled(), RunCancelledError, RunCancelled),
        (KeyboardInterrupt(), KeyboardInterrupt, RunCancelled),
        (WorkerLost("a worker process was lost"), WorkerLost, RunFailed),
    ],
)
def test_a_run_that_stops_early_says_so(raised, expected, event):
    cfg, engine, events = RunConfig("conv2"), Stopper(), []
    with pytest.raises(expected):
        with stopped_runs_reported(engine, "ex", 3, cfg, events.append):
            raise raised
    assert [type(e) for e in events] == [event] and events[0].run == 3
    assert engine.stopped == (["ex"] if expected is KeyboardInterrupt else [])
    if event is RunFailed:
        assert events[0].error == "a worker process was lost" and events[0].config is cfg


@pytest.mark.parametrize(
    "ok,err,line",
    [
        (True, 1e-7, None),
        (False, 0.5, "max abs error 0.5 exceeds tolerance 0.001"),
        (False, float("nan"), "the output holds NaN or infinite values"),
    ],
)
def test_the_end_of_a_verified_run(ok, err, line):
    result = RunResult(RunConfig("conv2"), 1, [1.0], 1, 1, 1, 1, 1, err, 1e-3, ok, 1, 1, [], [1], 0)
    events = []
    assert report(result, 4, err, 1e-3, events.append) is result
    assert result.error == line
    if ok:
        assert [type(e) for e in events] == [RunFinished]
    else:
        assert [(type(e), e.error, e.result) for e in events] == [(RunFailed, line, result)]


def test_timing_waits_for_blas_threads_left_spinning_by_a_threaded_call():
    """OpenBLAS's threads spin ~0.1 s after a call on several threads; a run timed then finds
    a core taken. blas.settle (called before every run's timed repeats) waits them out, only
    after a threaded call."""
    import time

    import numpy as np

    from partui.profiles.system import blas

    blas._threaded_until[0] = 0.0
    assert blas.settle() == 0.0  # nothing threaded lately: no wait at all
    a = np.ones((400, 400), np.float32)
    with blas.limit(2):
        for _ in range(3):
            a @ a
    waited = blas.settle()
    assert waited > 0.0
    if waited < blas.SPIN_S:  # it saw the process quiet (a spin longer than that is let be)
        c0 = time.process_time()
        time.sleep(0.03)
        assert time.process_time() - c0 < 0.01  # settled: nothing of this process spins
    assert blas.settle() == 0.0  # waited out once


def test_a_ctrl_c_a_library_swallowed_stops_the_run_at_the_next_repeat():
    """Cython's memoryview set-up (run as numpy.random loads) has `except: pass`: a
    KeyboardInterrupt raised there is swallowed. The CLI's handler notes each Ctrl+C; the
    repeat loop raises a noted one that nothing handled, so the run still stops."""
    from partui.profiles.system import interrupts

    try:
        try:
            interrupts.on_sigint(2, None)
        except:  # noqa: E722 - the library's bare except, swallowing it
            pass
        calls = []
        with pytest.raises(KeyboardInterrupt):
            timed_repeats(
                1, RunConfig("conv2", warmup=1, repeats=3), threading.Event(), lambda e: None,
                one=lambda rep: calls.append(rep) or [span(rep)],
            )  # fmt: skip
        assert calls == []  # stopped before its first repeat
        # raised once: the next run goes on; a handled Ctrl+C leaves nothing behind
        assert len(timed_repeats(
            1, RunConfig("conv2", warmup=0, repeats=2), threading.Event(), lambda e: None,
            one=lambda rep: [span(rep)],
        ).times_ms) == 2  # fmt: skip
        with pytest.raises(KeyboardInterrupt):
            interrupts.on_sigint(2, None)
        interrupts.handled()
        interrupts.raise_if_swallowed()  # nothing to raise
    finally:
        interrupts.handled()


def test_a_ctrl_c_in_a_finalizer_is_noted_and_raised_at_the_next_repeat():
    """A Ctrl+C that lands in a __del__ (llvmlite frees its objects so while numba loads
    kernels) is not raised there, where Python would print 'Exception ignored' and a
    traceback, but noted: the repeat loop raises it at its next check."""
    import sys

    from partui.profiles.system import interrupts

    class Finalized:
        def __del__(self):
            interrupts.on_sigint(signal.SIGINT, sys._getframe())

    seen = []
    old = sys.unraisablehook
    sys.unraisablehook = seen.append
    try:
        Finalized()  # its __del__ runs at once
    finally:
        sys.unraisablehook = old
    assert seen == []
    with pytest.raises(KeyboardInterrupt):
        interrupts.raise_if_swallowed()


def test_a_ctrl_c_in_llvmlite_is_noted_not_raised():
    """llvmlite's callbacks run from C through ctypes: a KeyboardInterrupt raised in them is
    printed as 'Exception ignored'. A Ctrl+C there is noted for the next repeat instead."""
    import types

    from partui.profiles.system import interrupts

    code = compile("pass", "/site-packages/llvmlite/binding/executionengine.py", "exec")
    frame = types.SimpleNamespace(f_code=code, f_back=None)
    interrupts.on_sigint(signal.SIGINT, frame)  # no KeyboardInterrupt here...
    with pytest.raises(KeyboardInterrupt):
        interrupts.raise_if_swallowed()  # ...but at the next check
