"""The native-region executor: a whole repeat as one native call on numba's threads.

What it refuses (one line each, before anything starts), that its stamps are on the clock
every other executor's spans use, and (slow: its parallel kernels compile for tens of
seconds when the cache is cold) that its runs are verified and its spans say who ran what
inside each repeat."""

import ctypes
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from waiting import budget

from partui.kernels.model.layers import LAYERS
from partui.kernels.plan.axes import KERNELS, STRATEGIES, not_applicable_reason
from partui.kernels.runtime.native_clock import native_clock, perf_counter_clock_id
from partui.kernels.runtime.numba_threads import pool_threads
from partui.profiles.executors.native_region import NativeRegionExecutor
from partui.profiles.records.config import RunConfig


def test_it_runs_conv_layers_and_the_network_by_batch_and_refuses_the_rest_in_one_line():
    runs = set()
    for name, layer in LAYERS.items():
        for s in STRATEGIES:
            for k in KERNELS:
                why = not_applicable_reason(layer, s, k, "native-region", 2)
                if why is None:
                    runs.add((name, s, k))
                else:
                    assert "not applicable" in why and "\n" not in why
    assert runs == {
        (n, s, "vectorized")
        for n in ("conv1", "conv2", "conv3", "network")
        for s in ("none", "batch")
    }
    why = RunConfig("conv2", executor="native-region", pass_kind="backward").not_applicable_reason()
    assert why is not None and "--pass backward" in why and "\n" not in why


def test_more_workers_than_numba_has_threads_are_refused_before_start(monkeypatch):
    monkeypatch.setenv("NUMBA_NUM_THREADS", "2")
    assert pool_threads() == 2
    assert NativeRegionExecutor.refusal(2) is None
    why = NativeRegionExecutor.refusal(3)
    assert why is not None and "at most 2 workers" in why and "\n" not in why


def test_native_stamps_read_the_clock_of_perf_counter_ns():
    clock, reason = native_clock()
    assert clock is not None, reason
    assert clock.clock_id == perf_counter_clock_id()
    ts = np.zeros(2, np.int64)
    for _ in range(5):
        before = time.perf_counter_ns()
        assert clock.clock(clock.clock_id, ctypes.c_void_p(ts.ctypes.data)) == 0
        after = time.perf_counter_ns()
        assert before <= int(ts[0]) * 10**9 + int(ts[1]) <= after
    assert clock.gettid() == threading.get_native_id()


@pytest.mark.slow
@pytest.mark.parametrize("name,strategy", [("conv3", "batch"), ("network", "none")])
def test_a_run_is_verified_and_its_spans_sit_inside_their_repeats(name, strategy):
    from partui.profiles.run.engine import Engine

    cfg = RunConfig(
        name, strategy=strategy, executor="native-region", workers=2, batch=5, repeats=3, warmup=1
    )
    with Engine(sample_hz=0) as engine:
        result = engine.run(cfg)
    assert result.ok and result.max_abs_error <= result.tolerance
    tasks = 2 if strategy == "batch" else 1
    spans = [s for s in result.spans if s.repeat >= 0]
    assert len(spans) == 3 * tasks
    starts = result.repeat_start_ns
    for s in spans:
        # stamped natively, on the clock the engine timed the repeat with
        wall_ns = result.times_ms[s.repeat] * 1e6
        assert starts[s.repeat] <= s.start_ns < s.end_ns <= starts[s.repeat] + wall_ns + 1
        assert 0 <= s.worker < 2 and s.tid > 0
        assert (s.wake_ns >= 0) == (s.worker > 0)
    if tasks == 2:  # one task per pool thread, each thread its own native id
        for r in range(3):
            assert sorted(s.worker for s in spans if s.repeat == r) == [0, 1]
        assert {s.tid for s in spans if s.worker == 0} == {threading.get_native_id()}


@pytest.mark.slow
def test_the_fixed_cost_of_an_empty_region_is_measured():
    from partui.profiles.bench.overhead import empty_repeats_us

    figures = empty_repeats_us("native-region", 2, repeats=50, warmup=5)
    assert len(figures) == 50 and all(v > 0 for v in figures)


AFTER_A_THREADS_RUN = """
import os, sys
from partui.profiles.records.config import RunConfig
from partui.profiles.run.engine import Engine

with Engine(sample_hz=0) as engine:
    assert "numba" not in sys.modules  # imported inside the threads run, its thread pinned
    first = engine.run(RunConfig("conv2", executor="threads", workers=2, batch=4, repeats=1))
    assert "numba" in sys.modules
    then = engine.run(RunConfig("conv2", executor="native-region", workers=2, batch=4, repeats=1))
    print(first.ok, then.ok)
"""


@pytest.mark.slow
@pytest.mark.processes
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_native_region_runs_two_workers_after_numba_was_first_loaded_by_a_pinned_thread():
    """numba sizes its pool by the importing thread's CPUs; a threads run pins its calling
    thread while numba loads. A fresh process, as the dashboard's engine is."""
    out = subprocess.run(
        [sys.executable, "-c", AFTER_A_THREADS_RUN],
        capture_output=True,
        text=True,
        timeout=budget(300),
    )
    assert out.returncode == 0 and out.stdout.split() == ["True", "True"], out.stderr[-2000:]


@pytest.mark.slow
def test_weights_are_checked_on_a_runs_first_call_and_a_change_between_runs_is_seen():
    """A forward pass writes its weights before its first repeat: the region checks them
    against its packed copy on a run's first call only, so weights changed in place between
    two runs (the same arrays, as a reused arena gives) are packed again."""
    from types import SimpleNamespace

    from partui.kernels.plan import strategies
    from partui.profiles.run.inputs import forward_reference, input_of, params_of

    layer, batch = LAYERS["conv2"], 4
    arrays = {"x": input_of("conv2", batch, 1), **params_of("conv2", 1)}
    arrays["out"] = np.full(layer.out_array_shape(batch), np.nan, np.float32)
    arena = SimpleNamespace(arrays=arrays)
    tasks = strategies.plan(layer, "batch", batch, 2).phases[0]

    def out_after(run: int) -> np.ndarray:
        ex.run_phase(layer, "vectorized", arena, tasks, run, 0)
        return arrays["out"].copy()

    def error(got, seed):
        return float(np.max(np.abs(got - forward_reference("conv2", batch, seed))))

    with NativeRegionExecutor(2) as ex:
        ex.start()
        ex.prepare_run()
        assert error(out_after(1), 1) < 1e-3
        for k, v in params_of("conv2", 2).items():  # new weights in the same arrays
            arrays[k][...] = v
        arrays["x"][...] = input_of("conv2", batch, 2)
        assert error(out_after(1), 2) > 1e-2  # within run 1 the packed copy stands
        assert error(out_after(2), 2) < 1e-3  # run 2's first call packs the new weights
        spans = ex.collect_spans([])
    assert [(s.run, s.task) for s in spans] == [(1, 0), (1, 1), (1, 0), (1, 1), (2, 0), (2, 1)]


@pytest.mark.slow
def test_a_bound_region_keeps_its_arrays_alive_and_refuses_arrays_its_layout_does_not_fit():
    """The region's arrays go in as a table of addresses and shapes: a bound region holds
    them, so it still computes right after the scratch it took them from made new buffers
    for another binding; and an array of the wrong order, dtype or rank is refused at bind
    (it would be read as the layout says), not read wrongly."""
    import gc

    from partui.kernels.forward import region, region_bind
    from partui.kernels.plan import strategies
    from partui.kernels.runtime.scratch import Scratch
    from partui.profiles.run.inputs import forward_reference, input_of, params_of

    layer, scratch = LAYERS["network"], Scratch()

    def bound(batch: int):
        arrays = {"x": input_of("network", batch, 3), **params_of("network", 3)}
        arrays["out"] = np.full(layer.out_array_shape(batch), np.nan, np.float32)
        tasks = strategies.plan(layer, "batch", batch, 2).phases[0]
        return arrays, region_bind.bind(layer, arrays, tasks, scratch)

    arrays, small = bound(4)
    assert small is not None
    _, large = bound(32)  # the scratch's buffers for the region made anew, larger
    del large
    gc.collect()
    arrays["out"].fill(np.nan)
    small.run(True)
    want = forward_reference("network", 4, 3)
    assert float(np.max(np.abs(arrays["out"] - want))) < 1e-3

    good = [np.zeros((3, 4), np.float32), np.zeros(5, np.int64)]
    layout = ((2, region.F32), (1, region.I64))
    fn = region.empty_region
    assert region_bind._tabled(fn, 0, good, layout, 2) is not None
    for bad in (
        [good[0].T, good[1]],  # Fortran order
        [good[0].astype(np.float64), good[1]],
        [good[0][None], good[1]],  # a dimension more
        [good[0]],  # one missing
    ):
        assert region_bind._tabled(fn, 0, bad, layout, 2) is None
