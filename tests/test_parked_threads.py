"""The `threads` executor: task i on worker i, parked threads, the caller as worker 0."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from partui.kernels.model import reference
from partui.kernels.model.layers import get_layer, make_input, make_params
from partui.kernels.runtime.scratch import Cancelled
from partui.profiles.bench.overhead import (
    empty_repeats_us,
    run_overhead_us,
    summary,
    time_split,
    wake_us,
)
from partui.profiles.executors.registry import make_executor
from partui.profiles.executors.threads import ParkedThreadExecutor, _shares, cpu_placement
from partui.profiles.records.config import RunConfig
from partui.profiles.records.events import Span
from partui.profiles.records.results import RunResult
from partui.profiles.run.engine import Engine
from partui.profiles.run.sampler import CpuSampler


def partui_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("partui-worker")]


@pytest.fixture
def engine():
    with Engine(sample_hz=0) as eng:
        yield eng
    assert partui_threads() == []


def test_threads_is_the_parked_executor_and_the_pool_stays_as_threads_dynamic():
    with make_executor("threads", 2) as ex:
        assert isinstance(ex, ParkedThreadExecutor)
    with make_executor("threads-dynamic", 2) as ex:
        assert ex.name == "threads-dynamic" and not isinstance(ex, ParkedThreadExecutor)


@pytest.mark.parametrize("workers", [2, 3])
def test_task_i_runs_on_worker_i_the_caller_is_worker_0_and_the_answer_is_right(engine, workers):
    me = threading.get_native_id()
    cfg = RunConfig("conv2", workers=workers, batch=6, repeats=4)
    r = engine.run(cfg, keep_arrays=True)
    layer = get_layer("conv2")
    expected = reference.forward(layer, make_input(layer, 6, 0), make_params(layer, 0))
    assert np.abs(r.arrays["output"] - expected).max() <= r.tolerance
    assert r.ok and r.tasks == workers
    by_repeat = {}
    for s in r.spans:
        by_repeat.setdefault(s.repeat, []).append(s)
    assert sorted(by_repeat) == [0, 1, 2, 3]
    for spans in by_repeat.values():
        assert sorted((s.task, s.worker) for s in spans) == [(i, i) for i in range(workers)]
        tids = {s.worker: s.tid for s in spans}
        assert tids[0] == me  # the calling thread ran its own share
        assert len(set(tids.values())) == workers  # every other task on a thread of its own
        # the woken workers' first tasks say how long the wake-up took
        for s in spans:
            assert s.wake_ns >= 0 and s.start_ns >= 0
    assert wake_us(r.spans) is not None and wake_us(r.spans) > 0


def test_more_tasks_than_workers_are_contiguous_shares_and_only_first_tasks_carry_a_wake(
    engine,
):
    assert _shares(list(range(5)), 2) == [[0, 1, 2], [3, 4]]
    assert _shares([0], 3) == [[0], [], []]
    r = engine.run(RunConfig("conv2", strategy="hybrid", workers=2, batch=4, repeats=2, warmup=0))
    assert r.ok and r.tasks == 4
    for s in r.spans:
        assert s.worker == s.task // 2
        assert (s.wake_ns >= 0) == (s.task % 2 == 0)


def test_filter_phases_and_the_pipeline_run_and_are_verified(engine):
    assert engine.run(RunConfig("conv2", strategy="filter", workers=2, batch=3, repeats=2)).ok
    r = engine.run(RunConfig("network", strategy="pipeline", workers=3, batch=6, repeats=2))
    assert r.ok and {s.worker for s in r.spans} == {0, 1, 2}


def test_an_error_in_a_task_is_raised_after_every_worker_stopped_and_the_pool_goes_on():
    with make_executor("threads", 3) as ex:

        def share(items, index, go):
            if items == ["bad"]:
                raise ValueError("task failed")
            deadline = time.monotonic() + 5
            while not ex.cancel_event.is_set():  # a long task that checks for cancel
                if time.monotonic() > deadline:
                    return ["never cancelled"]
                time.sleep(0.001)
            raise Cancelled()

        t0 = time.monotonic()
        with pytest.raises(ValueError, match="task failed"):  # the cause, not the stop it caused
            ex.run_shares(share, [["ok"], ["bad"], ["ok"]])
        assert time.monotonic() - t0 < 2
        ex.reset()
        got = ex.run_shares(lambda items, index, go: [threading.get_native_id()], [[1], [2], [3]])
        assert got[0] == threading.get_native_id() and len(set(got)) == 3
    assert partui_threads() == []


def test_cancel_from_another_thread_stops_a_repeat_at_the_next_check():
    with make_executor("threads", 2) as ex:

        def share(items, index, go):
            while not ex.cancel_event.is_set():
                time.sleep(0.001)
            raise Cancelled()

        threading.Timer(0.1, ex.cancel).start()
        t0 = time.monotonic()
        with pytest.raises(Cancelled):
            ex.run_shares(share, [[1], [2]])
        assert time.monotonic() - t0 < 1.5


def test_submitted_jobs_run_at_once_on_the_parked_threads_and_close_leaves_none():
    ex = make_executor("threads", 3)
    barrier = threading.Barrier(3, timeout=5)  # only passes if all three run together
    futures = [ex.submit(barrier.wait) for _ in range(3)]
    assert sorted(f.result(timeout=10) for f in futures) == [0, 1, 2]
    assert len(partui_threads()) == 3
    ex.close()
    assert partui_threads() == []


def test_the_sampler_counts_worker_0_as_the_caller_and_its_own_thread():
    with make_executor("threads", 2) as ex:
        ex.start()
        ids = ex.worker_ids()
        assert ids[0] == (threading.get_native_id(), ex._tids[0])  # noqa: SLF001
        end = time.thread_time() + 0.05
        while time.thread_time() < end:  # CPU on the calling thread
            pass
        cpu = CpuSampler(ids).worker_cpu()
        assert cpu[0] >= 0.05 and set(cpu) == {0, 1}


def test_overhead_figures_from_empty_tasks_and_from_a_runs_spans():
    values = empty_repeats_us("threads", 2, repeats=50, warmup=5)
    s = summary(values)
    assert len(values) == 50 and 0 < s["min_us"] <= s["median_us"] <= s["max_us"]
    assert len(empty_repeats_us("threads-dynamic", 2, repeats=20, warmup=2)) == 20
    # two repeats of 1.0 and 2.0 ms; their busiest workers 0.9 and 1.7 ms
    spans = [
        Span(0, 1, 0, 900_000, 1, repeat=0),
        Span(1, 2, 0, 500_000, 1, repeat=0),
        Span(0, 1, 0, 1_000_000, 1, repeat=1),
        Span(0, 1, 0, 700_000, 1, repeat=1),
        Span(1, 2, 0, 1_200_000, 1, repeat=1),
        Span(1, 2, 0, 9_000_000, 1, repeat=-1),  # a warm-up: not counted
    ]
    assert run_overhead_us([1.0, 2.0], spans) == pytest.approx((100 + 300) / 2)
    assert wake_us(spans) is None
    # the same repeats split: work 1.4 and 2.9 ms, busiest 0.9 and 1.7, imbalance
    # 0.9 / 0.7 and 1.7 / 1.45 (medians of two: their means)
    split = time_split([1.0, 2.0], spans)
    assert split is not None
    assert split.wall_ms == pytest.approx(1.5) and split.work_ms == pytest.approx(2.15)
    assert split.busiest_ms == pytest.approx(1.3) and split.fixed_us == pytest.approx(200)
    assert split.imbalance == pytest.approx((0.9 / 0.7 + 1.7 / 1.45) / 2)
    assert time_split([1.0], [Span(0, 1, 0, 5, 1, repeat=-1)]) is None  # warm-up only


def test_run_report_and_timeline_show_the_hand_out_cost_and_wake_up(engine):
    from partui.tui.cli.commands.run_report import run_report
    from partui.tui.dashboard.charts.timeline import timeline_lines, view_of_result

    r = engine.run(RunConfig("conv3", workers=2, batch=4, repeats=3))
    report = run_report(r)
    fixed = run_overhead_us(r.times_ms, r.spans)
    assert f"hand-out and collection {fixed:.0f} us per repeat" in report
    assert f"wake-up {wake_us(r.spans):.0f} us" in report
    view = view_of_result(r, 1, None)
    chosen = [s for s in r.spans if s.repeat == view.repeat]
    busiest = max(sum(s.duration_ns for s in chosen if s.worker == w) for w in (0, 1))
    assert view.fixed_us == pytest.approx(max(0.0, r.times_ms[view.repeat] * 1e3 - busiest / 1e3))
    assert view.wake_us == pytest.approx([s.wake_ns / 1e3 for s in chosen if s.worker == 1][0])
    shown = timeline_lines(view, 60, 12).plain  # with the legend, in the spare rows
    assert f"hand-out {view.fixed_us:.0f} µs/repeat · wake {view.wake_us:.0f} µs" in shown
    # executors that record no wake-up (the pool) show no such figure
    d = engine.run(RunConfig("conv3", executor="threads-dynamic", workers=2, batch=4, repeats=3))
    assert view_of_result(d, 2, None).fixed_us is None
    assert "hand-out" not in timeline_lines(view_of_result(d, 2, None), 110, 8).plain


def test_chunks_follow_the_l2_share_sysfs_lists(tmp_path, monkeypatch):
    from partui.kernels.forward import vectorized
    from partui.kernels.runtime import caches

    for i, (level, kind, size, shared) in enumerate(
        [(1, "Data", "48K", "0"), (2, "Unified", "2048K", "0-1"), (3, "Unified", "32M", "0-3")]
    ):
        d = tmp_path / "cpu0" / "cache" / f"index{i}"
        d.mkdir(parents=True)
        for name, value in (
            ("level", level),
            ("type", kind),
            ("size", size),
            ("shared_cpu_list", shared),
            ("coherency_line_size", 64),
        ):
            (d / name).write_text(f"{value}\n")
    monkeypatch.setattr(caches, "SYS_CPU", tmp_path)
    caches.own_share.cache_clear()
    try:
        assert caches.own_share(2) == 1024 * 1024  # 2 MB shared by two CPUs
        assert caches.own_share(3) == 8 * 1024 * 1024
        assert vectorized.chunk_bytes() == 1024 * 1024 // vectorized.CHUNK_L2_PARTS
        monkeypatch.setattr(caches, "SYS_CPU", tmp_path / "nowhere")
        caches.own_share.cache_clear()
        assert vectorized.chunk_bytes() == vectorized.CHUNK_FALLBACK
    finally:
        caches.own_share.cache_clear()


def test_a_runs_end_leaves_no_worker_holding_its_arrays(engine):
    from partui.kernels.forward import compute

    for executor, workers in (("threads", 2), ("threads-dynamic", 2), ("inline", 1)):
        r = engine.run(RunConfig("conv2", executor=executor, workers=workers, batch=4, repeats=2))
        assert r.ok
        held = [s for s in compute._HOLDING if s.calls or s.calls_arrays]  # noqa: SLF001
        assert held == [], executor


def test_cpu_placement_gives_each_worker_a_cpu_of_its_own_or_none(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {7, 3, 5})
    assert cpu_placement(2) == [3, 5] and cpu_placement(3) == [3, 5, 7]
    assert cpu_placement(1) is None  # one worker: nothing to keep apart
    assert cpu_placement(4) is None  # more workers than CPUs: the scheduler shares them out
    monkeypatch.setenv("PARTUI_PIN_THREADS", "0")
    assert cpu_placement(2) is None


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_workers_are_pinned_and_the_caller_only_for_the_timed_repeats(engine, monkeypatch):
    cpus = sorted(os.sched_getaffinity(0))[:2]
    before = os.sched_getaffinity(0)
    ex = ParkedThreadExecutor(2)
    ex.start()
    try:
        assert ex.worker_cpus == cpus
        for slot, cpu in zip(ex._slots, cpus):
            assert os.sched_getaffinity(slot.thread.native_id) == {cpu}
        with ex.placed():
            assert os.sched_getaffinity(0) == {cpus[0]}
            seen = ex.run_shares(lambda share, index, go: [os.sched_getaffinity(0)], [[0], [1]])
        assert seen == [{cpus[0]}, {cpus[1]}]
        assert os.sched_getaffinity(0) == before  # the caller is free again
    finally:
        ex.close()
    # a run says where its workers ran, and its record keeps it
    r = engine.run(RunConfig("conv3", workers=2, batch=4, repeats=2))
    assert r.ok and r.worker_cpus == cpus and os.sched_getaffinity(0) == before
    assert RunResult.from_dict(r.to_dict()).worker_cpus == cpus
    assert (
        engine.run(RunConfig("conv3", executor="inline", workers=1, batch=4, repeats=2)).worker_cpus
        == []
    )
    monkeypatch.setenv("PARTUI_PIN_THREADS", "0")
    with ParkedThreadExecutor(2) as free:
        free.start()
        assert free.worker_cpus == []
        assert os.sched_getaffinity(free._slots[1].thread.native_id) == before
