"""SVG snapshots of the profile tab's four charts in each state: empty (nothing yet), idle
(CPU samples, no run), running (a run half done), finished (a worker sweep done).

The events are built by hand and "now" is fixed, so the pictures depend only on the code.
Update them after an intended change with `pytest --snapshot-update`.
"""

from __future__ import annotations

from screen_fixtures import fixed_app

from partui.profiles.records.config import RunConfig
from partui.profiles.records.events import (
    CpuSample,
    RepeatDone,
    RunFinished,
    RunStarted,
    Span,
    SpanDone,
)
from partui.profiles.records.stats import summarize

MS = 1_000_000
T0 = 1_000 * 1_000_000_000  # the engine's clock at the first sample
CFG = RunConfig("conv2", workers=2, repeats=3)


def idle_samples(seconds: float = 20.0, start: int = T0) -> list:
    """Two cores sampled at 2 Hz, with a 4 s stretch nobody sampled."""
    out = []
    for i in range(int(seconds * 2)):
        if 16 <= i < 24:
            continue
        load = [20.0 + 30 * (i % 7 == 0), 5.0 + i % 3]
        out.append(
            CpuSample(
                start + i * 500 * MS,
                load,
                {},
                1.0,
                60.0,
                window_ns=500 * MS,
                partui_cpu=3.0,
                others_cpu=25.0 + i % 5,
            )
        )
    return out


def run_events(run: int, workers: int, times: list[float], start: int, done: int | None = None):
    """A run of `times` repeats (one warm-up first), one task per worker, the last worker
    idle a quarter of each repeat; stops after `done` timed repeats when given."""
    cfg = RunConfig(
        CFG.layer,
        strategy=CFG.strategy,
        kernel=CFG.kernel,
        executor=CFG.executor,
        workers=workers,
        batch=CFG.batch,
        repeats=len(times),
    )
    events = [RunStarted(run, cfg, 0.0)]
    t = start
    spans = []
    for rep, ms in enumerate([times[0] * 1.5] + times, start=-1):
        if done is not None and rep >= done:
            break
        for w in range(workers):
            length = int(ms * MS * (0.75 if w == workers - 1 and workers > 1 else 1.0))
            half = length // 2
            for k, (a, b) in enumerate(((0, half), (half, length))):  # two tasks a worker
                span = Span(w, 100 + w, t + a, t + b, 1, task=2 * w + k, repeat=rep, run=run)
                events.append(SpanDone(span))
                spans.append(span)
        events.append(RepeatDone(run, rep, int(ms * MS), t))
        events.append(
            CpuSample(
                t + int(ms * MS),
                [95.0, 90.0 if workers > 1 else 10.0],
                {},
                100.0 * workers,
                80.0,
                window_ns=int(ms * MS),
                partui_cpu=100.0 * workers,
                others_cpu=5.0,
            )
        )
        t += int(ms * MS) + MS
    if done is None:
        from test_stats import fake

        result = fake(workers=workers, times=tuple(times))
        result.config = cfg
        s = summarize(times)
        result.median_ms, result.min_ms, result.max_ms = s.median, s.min, s.max
        result.on_cpu_ratio = [0.97, 0.42][:workers]
        events.append(RunFinished(run, result))
    return events, t


def prepared(events: list, now: int):
    async def run_before(pilot) -> None:
        app = pilot.app
        app.session.clock = lambda: now
        app.session.apply(events)
        app.redraw(force=True)
        app.refresh_header()
        await pilot.pause()

    return run_before


def test_charts_empty(snap_compare, tmp_path):
    assert snap_compare(fixed_app(CFG), terminal_size=(120, 40), run_before=prepared([], T0))


def test_charts_idle(snap_compare, tmp_path):
    samples = idle_samples()
    assert snap_compare(
        fixed_app(CFG),
        terminal_size=(120, 40),
        run_before=prepared(samples, samples[-1].t_ns + 200 * MS),
    )


def test_charts_running(snap_compare, tmp_path):
    samples = idle_samples(10)
    events, t = run_events(1, 2, [9.0, 8.0, 10.0], samples[-1].t_ns + MS, done=2)
    assert snap_compare(
        fixed_app(CFG), terminal_size=(120, 40), run_before=prepared(samples + events, t)
    )


def test_charts_finished_sweep(snap_compare, tmp_path):
    samples = idle_samples(10)
    one, t = run_events(1, 1, [16.0, 15.0, 17.0], samples[-1].t_ns + MS)
    two, t = run_events(2, 2, [9.0, 8.0, 10.0], t + 50 * MS)
    assert snap_compare(
        fixed_app(CFG),
        terminal_size=(120, 40),
        run_before=prepared(samples + one + two, t + 300 * MS),
    )
