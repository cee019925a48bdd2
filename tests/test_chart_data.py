"""What the profile charts draw, checked against hand-built spans, samples and runs."""

import math

from rich.console import Console
from test_stats import fake

from partui.profiles.records.config import RunConfig
from partui.profiles.records.events import (
    CpuSample,
    RepeatDone,
    RunFinished,
    RunStarted,
    Span,
    SpanDone,
)
from partui.profiles.store.analysis import pool, pooled_by_config
from partui.tui.dashboard.charts.cpu import cpu_segments
from partui.tui.dashboard.charts.history import history_segments
from partui.tui.dashboard.charts.speedup import speedup_points, worker_ticks
from partui.tui.dashboard.charts.timeline import (
    build_view,
    lane_cells,
    median_repeat,
    nice_ticks,
    phase_names,
    ratio_text,
    time_unit,
    timeline_lines,
    view_of_result,
)
from partui.tui.dashboard.model import Model

MS = 1_000_000
S = 1_000_000_000


def text_of(view, width, height) -> str:
    console = Console(width=width, color_system=None, record=True)
    console.print(timeline_lines(view, width, height))
    return console.export_text()


# ---- timeline ------------------------------------------------------------------------


def two_repeats():
    """Repeat 0: w0 runs two tasks back to back (0-3, 3-5 ms), w1 one task (1-2 ms) then idles.
    Repeat 1 is later; a warm-up (-1) is earlier and longer."""
    return [
        Span(0, 1, -50 * MS, -10 * MS, 1, task=0, repeat=-1),
        Span(0, 1, 0, 3 * MS, 1, task=0, repeat=0),
        Span(0, 1, 3 * MS, 5 * MS, 1, task=2, repeat=0),
        Span(1, 2, 1 * MS, 2 * MS, 1, task=1, repeat=0),
        Span(0, 1, 100 * MS, 104 * MS, 1, task=0, repeat=1),
        Span(1, 2, 100 * MS, 104 * MS, 1, task=1, repeat=1),
    ]


def test_median_repeat_is_the_middle_time():
    assert median_repeat([5.0, 9.0, 1.0]) == 0
    assert median_repeat([4.0, 1.0, 3.0, 2.0]) == 3  # the lower middle of an even count
    assert median_repeat([]) is None


def test_one_repeat_only_its_own_spans_warm_up_never_mixed_in():
    r = fake(workers=2, times=(5.2, 4.0))
    r.spans = two_repeats()
    r.on_cpu_ratio = [0.95, 0.31]
    view = view_of_result(r, 7, None)
    assert view.repeat == 1 and view.median_repeat == 1  # 4.0 of (5.2, 4.0): the lower middle
    view = view_of_result(r, 7, 0)
    assert (view.t0, view.t1) == (0, 5 * MS) and view.extent_ms == 5.0
    assert [len(lane.spans) for lane in view.lanes] == [2, 1]
    assert math.isclose(view.lanes[0].busy_share, 1.0) and math.isclose(
        view.lanes[1].busy_share, 0.2
    )
    assert view.lanes[1].waiting and not view.lanes[0].waiting  # on-CPU 0.31: mostly waiting


def test_task_boxes_show_their_boundary_and_idle_stays_empty():
    r = fake(workers=2, times=(5.2, 4.0))
    r.spans = two_repeats()
    view = view_of_result(r, 7, 0)
    cells = lane_cells(view.lanes[0], view.t0, 5 * MS, 50)
    chars = "".join(c for c, _ in cells)
    assert chars[30] == "▐" and set(chars[:30]) == {"█"}  # the second task starts at 3 ms
    assert cells[0][1] != cells[31][1]  # consecutive tasks in two shades
    idle = "".join(c for c, _ in lane_cells(view.lanes[1], view.t0, 5 * MS, 50))
    assert idle[:10] == "·" * 10 and idle[20:] == "·" * 30 and set(idle[10:20]) == {"█"}


def test_timeline_text_axis_spans_one_repeat_in_a_readable_unit():
    r = fake(workers=2, times=(5.2, 4.0))
    r.spans = two_repeats()
    text = text_of(view_of_result(r, 7, 0), 60, 8)
    assert "run 7" in text and "rep 1/2" in text
    assert "w0" in text and "w1" in text and " ms " in text and " 5" in text
    assert "100%" in text and " 20%" in text
    assert time_unit(800_000) == ("µs", 1e3) and time_unit(9 * MS)[0] == "ms"
    assert nice_ticks(9.0, 5) == [0, 2, 4, 6, 8] and nice_ticks(9.0, 2) == [0, 5]
    assert max(nice_ticks(0.9, 6)) <= 0.9


def test_the_axis_spans_the_whole_timed_repeat_hand_out_and_collection_show_as_idle():
    # the repeat was timed from 0 to 10 ms; its only task ran 4-6 ms (a process pool's
    # hand-out and collection took the rest)
    r = fake(workers=1, times=(10.0,))
    r.spans = [Span(0, 1, 14 * MS, 16 * MS, 1, task=0, repeat=0)]
    r.repeat_start_ns = [10 * MS]
    view = view_of_result(r, 1, None)
    assert (view.t0, view.t1) == (10 * MS, 20 * MS) and view.extent_ms == 10.0
    assert math.isclose(view.lanes[0].busy_share, 0.2)
    chars = "".join(ch for ch, _ in lane_cells(view.lanes[0], view.t0, view.t1 - view.t0, 50))
    assert chars[:20] == "·" * 20 and set(chars[20:30]) == {"█"} and chars[30:] == "·" * 20
    # a snapshot without repeat starts (an older format): the axis spans the tasks' own extent
    r.repeat_start_ns = []
    assert view_of_result(r, 1, None).extent_ms == 2.0


def test_a_pooled_live_row_shows_a_repeat_of_its_last_run_with_that_repeats_time():
    first, last = fake(workers=1, times=(1.0, 1.0, 1.0)), fake(workers=1, times=(7.0, 5.0, 6.0))
    last.spans = [Span(0, 1, i * 10 * MS, i * 10 * MS + MS, 1, repeat=i) for i in range(3)]
    last.repeat_start_ns = [i * 10 * MS for i in range(3)]
    pooled = pool([first, last])
    assert len(pooled.times_ms) == 6
    view = view_of_result(pooled, 4, None)
    assert view.repeats == [0, 1, 2] and view.repeat == 2 and view.wall_ms == 6.0
    assert view.lanes[0].spans == [last.spans[2]]


def test_head_and_legend_keep_their_words_in_a_narrow_pane():
    r = fake(workers=2, times=(5.2, 4.0))
    r.spans = two_repeats()
    r.on_cpu_ratio = [1.04, 0.31]
    text = text_of(view_of_result(r, 7, None), 35, 10)
    head = text.splitlines()[0]
    assert "busy" in head and "cpu" in head and "run 7" in head and "…" not in head
    assert "1.0+" in text and "0.31" in text  # over 1 is not shown as more than all the time
    assert "cpu: CPU time / busy time" in text and "busy: share of the repeat" in text
    assert ratio_text(float("nan")) == "-" and ratio_text(1.0) == "1.00"
    # a loops run's repeat of seconds reads in whole ms, never as "4.81e+03 ms"
    r = fake(workers=1, times=(4810.4,))
    r.spans = [Span(0, 1, 0, 4800 * MS, 1, task=0, repeat=0)]
    head = text_of(view_of_result(r, 2, None), 80, 6).splitlines()[0]
    assert head.endswith("run 2 · rep 1/1 median · 4810 ms"), head


def test_more_workers_than_fit_are_counted_never_merged():
    spans = [Span(w, w, 0, MS, 1, task=w, repeat=0) for w in range(12)]
    view = build_view(
        RunConfig("conv2", executor="threads", workers=12), 1, spans, 0, [0], 0, 1.0, []
    )
    text = text_of(view, 60, 8)
    assert "+8 more workers" in text and "w3" in text and "w4 " not in text


def test_phases_are_named_filter_reduce_and_pipeline_stages_by_layer():
    assert phase_names(RunConfig("conv2", strategy="filter")) == {0: "compute", 1: "reduce"}
    stages = phase_names(RunConfig("network", strategy="pipeline", workers=3))
    assert len(stages) == 3 and "conv1" in stages[0] and "logsoftmax" in stages[2]
    spans = [
        Span(0, 1, 0, 2 * MS, 1, task=0, phase=0, repeat=0),
        Span(0, 1, 2 * MS, 3 * MS, 1, task=2, phase=1, repeat=0),
    ]
    view = build_view(
        RunConfig("conv2", strategy="filter", executor="threads", workers=1),
        1,
        spans,
        0,
        [0],
        0,
        3.0,
        [],
    )
    assert "compute" in text_of(view, 60, 6) and "reduce" in text_of(view, 60, 6)


def test_model_timeline_follows_the_run_and_steps_repeats():
    m = Model(RunConfig("conv2", workers=2), max_workers=2)
    cfg = RunConfig("conv2", workers=2, batch=4, repeats=3)
    events = [RunStarted(1, cfg, 0.0)]
    times = {-1: 9.0, 0: 3.0, 1: 1.0, 2: 2.0}
    for rep, ms in times.items():
        t = (rep + 2) * 10 * MS
        events += [
            SpanDone(Span(w, w, t, t + int(ms * MS), 1, task=w, repeat=rep, run=1)) for w in (0, 1)
        ]
        events.append(RepeatDone(1, rep, int(ms * MS), t))
    m.apply(events[:7])  # the warm-up and repeat 0 are done: a single run shows its progress
    view = m.timeline_view()
    assert view.running and view.repeat == 0
    r = fake(workers=2, times=(3.0, 1.0, 2.0))  # the end of the run comes without its spans
    m.apply(events[7:] + [RunFinished(1, r)])
    assert len(m.runs[0].spans) == 3 * 2 and all(s.repeat >= 0 for s in m.runs[0].spans)
    view = m.timeline_view()
    assert not view.running and view.repeat == 2 == view.median_repeat  # 2.0 ms
    m.step_repeat(1)
    assert m.timeline_view().repeat == 0
    m.step_repeat(-1)
    m.step_repeat(-1)
    assert m.timeline_view().repeat == 1


# ---- CPU ------------------------------------------------------------------------------


def sample(t_s, per_core, window_s=0.5, others=None):
    return CpuSample(
        int(t_s * S), per_core, {}, 1.0, 50.0, window_ns=int(window_s * S), others_cpu=others
    )


def test_cpu_window_ends_now_and_breaks_at_gaps_and_unread_values():
    samples = [sample(t, [10.0, 20.0], others=40.0) for t in (100, 100.5, 101)]
    samples += [sample(110, [50.0, 60.0], window_s=9.0)]  # nothing sampled in between
    samples += [sample(110.5, [float("nan"), 70.0]), sample(111, [30.0, 80.0])]
    samples += [sample(50, [99.0, 99.0])]  # older than 30 s: left out
    series = cpu_segments(sorted(samples, key=lambda s: s.t_ns), now_ns=int(112 * S))
    core0 = series.cores[0]
    assert [len(seg) for seg in core0] == [3, 1, 1]  # a gap, then an unread value
    assert core0[0][0] == (-12.0, 10.0) and core0[-1][-1] == (-1.0, 30.0)
    assert [len(seg) for seg in series.cores[1]] == [3, 3]
    assert series.others[0][0][1] == 20.0  # 40% of one core on 2 cores: 20% of the machine


def test_cpu_sample_after_a_long_silence_starts_a_new_line():
    samples = [sample(1, [10.0]), sample(4, [10.0], window_s=0)]  # old snapshot: no window
    assert [len(s) for s in cpu_segments(samples, now_ns=5 * S).cores[0]] == [1, 1]


# ---- speedup --------------------------------------------------------------------------


def test_speedup_points_pool_runs_with_min_max_bars():
    runs = [
        fake(workers=1, times=(10.0, 11.0, 12.0)),
        fake(workers=2, times=(5.0, 6.0)),
        fake(workers=2, times=(4.0, 7.0)),
        fake(workers=3, times=(4.0,), ok=False),
        fake(workers=2, times=(1.0,), strategy="channel"),
    ]
    key = runs[0].config.series_key()
    points = speedup_points(runs, key, baseline_ms=10.0)
    assert [p.workers for p in points] == [1, 2]  # the failed run and other strategy left out
    p2 = points[1]
    assert p2.runs == 2 and math.isclose(p2.speedup, 10 / 5.5)  # median of 4, 5, 6, 7
    assert math.isclose(p2.low, 10 / 7) and math.isclose(p2.high, 10 / 4)
    assert worker_ticks([1, 2]) == [1, 2] and worker_ticks([1, 81]) == list(range(1, 82, 11))
    assert all(isinstance(t, int) for t in worker_ticks([2, 3, 5]))


def test_pooling_counts_every_repeat_of_every_run():
    a, b = fake(times=(5.0, 6.0), busy=(4.0, 2.0)), fake(times=(7.0, 8.0), busy=(6.0, 4.0))
    a.on_cpu_ratio, b.on_cpu_ratio = [1.0, float("nan")], [0.5, 0.25]
    p = pool([a, b])
    assert p.times_ms == [5.0, 6.0, 7.0, 8.0] and p.median_ms == 6.5
    assert (p.min_ms, p.max_ms) == (5.0, 8.0)
    assert p.on_cpu_ratio[0] == 1.0 and p.on_cpu_ratio[1] == 0.25  # NaN left out
    assert len(pooled_by_config([a, b, fake(workers=1)])) == 2
    assert pool([a]) is a


# ---- history --------------------------------------------------------------------------


def test_history_marks_each_configuration_change():
    reps = [(1, 5.0, "a"), (1, 6.0, "a"), (2, 900.0, "b"), (3, 5.5, "a")]
    segments, marks = history_segments(reps)
    assert marks == [2, 3]
    assert segments == [[(0, 5.0), (1, 6.0)], [(2, 900.0)], [(3, 5.5)]]


# ---- pooled live rows -------------------------------------------------------------------


def test_live_runs_are_one_row_per_configuration_single_runs_their_own():
    m = Model(RunConfig("conv2", workers=2), max_workers=2)
    cfg2 = fake(workers=2).config
    cfg1 = fake(workers=1).config

    def run(cfg, live, times):
        r = fake(workers=cfg.workers, times=times)
        return [RunStarted(0, cfg, 0.0, live=live), RunFinished(0, r)]

    m.apply(run(cfg1, False, (10.0,)))  # a single run: its own row
    for t in (5.0, 6.0, 7.0):
        m.apply(run(cfg2, True, (t,)))
    m.apply(run(cfg1, True, (9.0,)))
    m.apply(run(cfg2, True, (4.0,)))
    entries = m.table_entries()
    assert [(e[1], e[2]) for e in entries] == [(1, 1), (5, 1), (6, 4)]
    pooled = entries[-1][3]
    assert pooled.result.times_ms == [5.0, 6.0, 7.0, 4.0] and pooled.result.median_ms == 5.5
    assert math.isclose(pooled.stats.speedup_honest, 9.0 / 5.5)  # best 1-worker: 9 ms


def test_log_ticks_are_one_two_five_within_the_range():
    from partui.tui.dashboard.charts.history import log_ticks

    assert log_ticks(6.0, 10_000.0) == [10, 100, 1000, 10000]  # a 10 s run beside 6 ms ones
    assert log_ticks(3.0, 30.0) == [5, 10, 20]
    assert log_ticks(8.0, 17.0) == [8, 10, 17]
