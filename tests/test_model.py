"""Model.apply on hand-built event lists: what the dashboard keeps of each run, checked
against the events themselves."""

import pytest
from test_stats import fake

from partui.profiles.records.config import RunConfig
from partui.profiles.records.events import (
    CpuSample,
    RepeatDone,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
    Span,
    SpanDone,
)
from partui.tui.dashboard import model as model_module
from partui.tui.dashboard.model import Model

MS = 1_000_000
CFG = RunConfig("conv2", workers=2, batch=8, repeats=3, warmup=1)


def sample(t_ns: int) -> CpuSample:
    return CpuSample(t_ns, [50.0, 50.0], {0: 0.1, 1: 0.1}, 3.0, 60.0)


def run_events(run: int, cfg: RunConfig = CFG, live: bool = False, t0: int = 0):
    """A run of one warm-up and cfg.repeats timed repeats, two tasks each, a CPU sample per
    repeat; the result at its end carries no spans or samples (they were streamed)."""
    events: list = [RunStarted(run, cfg, 0.0, live=live)]
    spans, samples = [], []
    for rep in range(-1, cfg.repeats):
        start = t0 + (rep + 1) * 10 * MS
        for task in range(2):
            s = Span(task, 100 + task, start, start + 4 * MS, 10, task=task, repeat=rep, run=run)
            spans.append(s)
            events.append(SpanDone(s))
        cpu = sample(start + 5 * MS)
        samples.append(cpu)
        events += [cpu, RepeatDone(run, rep, 4 * MS + rep, start)]
    result = fake(workers=cfg.workers, times=tuple(4.0 + r / 1e6 for r in range(cfg.repeats)))
    result.config = cfg
    events.append(RunFinished(run, result))
    return events, spans, samples


def test_a_run_keeps_its_timed_spans_its_samples_and_its_repeat_times():
    m = Model(CFG, max_workers=2)
    events, spans, samples = run_events(1)
    before = m.version
    assert m.apply(events) is True and m.version == before + 1
    (r,) = m.runs
    assert r.spans == [s for s in spans if s.repeat >= 0]  # warm-ups are not kept
    assert r.cpu_samples == samples and list(m.cpu) == samples
    assert list(m.repeats) == [(1, (4 * MS + rep) / 1e6, CFG.key()) for rep in range(3)]
    assert m.running is None and m.run_count == 1 and m.live_runs == set()
    assert m.run_number(1) is r and m.run_number(2) is None


def test_spans_and_samples_between_runs_touch_no_run():
    m = Model(CFG, max_workers=2)
    stray = Span(0, 1, 0, MS, 1)
    m.apply([SpanDone(stray), sample(5), RepeatDone(9, 0, MS)])
    assert m.spans == [] and m.run_samples == [] and list(m.repeats) == []
    assert len(m.cpu) == 1  # the CPU chart still shows it
    assert m.apply([]) is False


def test_live_runs_are_marked_and_a_failure_without_result_is_kept_in_place():
    m = Model(CFG, max_workers=2)
    m.apply(run_events(1)[0])
    m.apply(run_events(2, live=True)[0])
    bad = RunConfig("conv2", workers=3)
    m.apply([RunStarted(3, bad, 0.0), RunFailed(3, "worker lost", config=bad)])
    assert m.live_runs == {2} and m.run_count == 2
    assert m.failures == [(2, bad, "worker lost")] and m.running is None
    wrong = fake()
    m.apply([RunStarted(4, CFG, 0.0), RunFailed(4, "max abs error 1", wrong, CFG)])
    assert m.runs[-1] is wrong and m.run_count == 3  # a wrong answer is a row (FAIL)


def test_a_cancelled_run_adds_nothing():
    m = Model(CFG, max_workers=2)
    events = run_events(1)[0]
    m.apply(events[:-1] + [RunCancelled(1, CFG)])
    assert m.runs == [] and m.running is None and m.failures == []
    assert len(list(m.repeats)) == 3  # its repeats did happen: the history shows them


def test_old_runs_let_go_of_their_spans_then_of_themselves(monkeypatch):
    monkeypatch.setattr(model_module, "RUN_DETAIL", 2)
    monkeypatch.setattr(model_module, "RUN_HISTORY", 4)
    m = Model(CFG, max_workers=2)
    for run in range(1, 7):
        m.apply(run_events(run, live=run % 2 == 0)[0])
    assert m.run_count == 6 and m.runs_dropped == 2 and len(m.runs) == 4
    assert [bool(r.spans) for r in m.runs] == [False, False, True, True]
    assert m.run_number(2) is None and m.run_number(3) is m.runs[0]
    assert m.live_runs == {4, 6}  # numbers of dropped runs are forgotten


@pytest.mark.parametrize("n", [1, 3])
def test_each_run_streams_into_its_own_result(n):
    m = Model(CFG, max_workers=2)
    all_spans = []
    for run in range(1, n + 1):
        events, spans, _ = run_events(run, t0=run * 100 * MS)
        m.apply(events)
        all_spans.append([s for s in spans if s.repeat >= 0])
    assert [r.spans for r in m.runs] == all_spans


def test_the_timeline_says_a_first_run_is_warming_up_then_shows_its_repeat():
    from partui.tui.dashboard.charts.worker_timeline import TimelineChart

    m = Model(CFG, max_workers=2)
    chart = TimelineChart()
    assert chart.version_key(m) is None  # nothing asked yet: the "no run yet" hint
    events, _, _ = run_events(1)
    warm = events.index(next(e for e in events if isinstance(e, RepeatDone)))
    m.apply(events[: warm + 1])  # started; only the warm-up repeat (-1) has ended
    chart.draw_model(m)
    assert chart.view is None
    assert chart.waiting == f"run 1 ({CFG.label()}) running: repeat 1 of 3; the timeline " \
        "shows its first timed repeat when it ends"  # fmt: skip
    assert chart.version_key(m) == chart.waiting
    m.apply(events[warm + 1 : warm + 5])  # repeat 0 ended too
    chart.draw_model(m)
    assert chart.view is not None and chart.waiting is None
    assert chart.going == "run 1 running: repeat 2 of 3"
    m.apply(events[warm + 5 :])
    chart.draw_model(m)
    assert chart.going is None  # the run ended


def test_the_timeline_says_a_new_run_is_going_over_the_last_runs_lanes():
    from partui.tui.dashboard.charts.worker_timeline import TimelineChart

    m = Model(CFG, max_workers=2)
    chart = TimelineChart()
    m.apply(run_events(1)[0])
    events, _, _ = run_events(2, t0=100 * MS)
    m.apply(events[:1])  # run 2 started: the lanes are still run 1's
    chart.draw_model(m)
    assert chart.view.run == 1
    assert chart.going == "run 2 running: warm-up 1 of 1 · below: run 1"
    key = chart.version_key(m)
    m.apply(events[1:5])  # its warm-up ended
    assert chart.version_key(m) != key
    chart.draw_model(m)
    assert chart.going == "run 2 running: repeat 1 of 3 · below: run 1"
    text = chart.render().plain.splitlines()  # over the lanes, in the pane's width
    assert text[0].startswith("running: repeat 1 of")  # unmounted: a narrow pane
    assert text[1].split()[:3] == ["busy", "cpu", "r1"]  # run 1's lanes below
