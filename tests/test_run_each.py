"""Executor.run_each: the public way the pipeline and the backward/training passes hand jobs
to an executor and wait for them, on every executor."""

from __future__ import annotations

import os
import threading

import pytest

from partui.kernels.runtime.scratch import Cancelled
from partui.profiles.executors.registry import make_executor

EXECUTORS = ["inline", "blas", "threads", "threads-dynamic", "processes"]


def where(item, here):
    """(item, worker index, pid, thread id, a scratch buffer) of the worker that ran it."""
    return item, here.index, os.getpid(), threading.get_native_id(), id(here.scratch)


def fail_on_two(item, here):
    if item == 2:
        raise ValueError("job 2 failed")
    return item


@pytest.mark.parametrize("name", EXECUTORS)
def test_every_executor_runs_each_item_once_and_names_its_worker(name):
    workers = 1 if name == "inline" else 2
    finished = []
    with make_executor(name, workers) as ex:
        got = ex.run_each(where, range(4), finished.append)
    assert [g[0] for g in got] == [0, 1, 2, 3]  # in item order
    assert sorted(finished) == sorted(got)  # each reported once as it finished
    pool = 1 if name in ("inline", "blas") else workers
    assert all(0 <= g[1] < pool for g in got)
    if name in ("inline", "blas"):  # the calling thread, worker 0
        assert {(g[1], g[2], g[3]) for g in got} == {(0, os.getpid(), threading.get_native_id())}
    elif name == "processes":
        assert os.getpid() not in {g[2] for g in got}
    else:
        assert threading.get_native_id() not in {g[3] for g in got}
    # one worker index names one worker, with its own scratch
    by_index: dict = {}
    for _, index, pid, tid, scratch in got:
        by_index.setdefault(index, set()).add((pid, tid, scratch))
    assert all(len(v) == 1 for v in by_index.values())


@pytest.mark.parametrize("name", ["threads", "threads-dynamic"])
def test_the_items_of_a_pool_run_side_by_side(name):
    """A pipeline's stages wait on each other: they only finish if they run at once."""
    barrier = threading.Barrier(3, timeout=10)
    with make_executor(name, 3) as ex:
        got = ex.run_each(lambda item, here: (barrier.wait(), here.index)[1], range(3))
    assert sorted(got) == [0, 1, 2]


@pytest.mark.parametrize("name", EXECUTORS)
def test_the_first_error_is_raised_and_the_executor_goes_on(name):
    with make_executor(name, 2) as ex:
        with pytest.raises(ValueError, match="job 2 failed"):
            ex.run_each(fail_on_two, range(4))
        ex.reset()
        assert ex.run_each(fail_on_two, [0, 1]) == [0, 1]


def test_here_cancel_is_the_run_s_cancel_flag():
    def wait_for_cancel(item, here):
        if item == 0:
            raise RuntimeError("stop the others")
        while not here.cancel.is_set():
            pass
        raise Cancelled()

    with make_executor("threads", 2) as ex:
        with pytest.raises(RuntimeError, match="stop the others"):
            ex.run_each(wait_for_cancel, range(2))
