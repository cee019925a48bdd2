"""The profile tab tells the truth: charts that fail stay in their pane, live runs pool per
configuration, the timeline shows one repeat of the run one picks, the CPU monitor is always on.

The live timers are off (live_loop=False): tests drain the engine with `app.tick()`.
"""

from __future__ import annotations

import pytest
from test_dashboard import SIZE, cell, make_app, settings_text, until

from partui.profiles.records.config import RunConfig
from partui.profiles.records.events import CpuSample
from partui.profiles.service.engine import EngineProcess, EngineThread
from partui.tui.dashboard.app import PartuiApp
from partui.tui.dashboard.charts.cpu import CpuChart
from partui.tui.dashboard.widgets.runs_table import RunsTable


async def test_a_chart_that_raises_shows_one_line_and_the_app_goes_on(tmp_path, monkeypatch):
    def broken(self, plt, model):
        raise IndexError("list index out of range")

    monkeypatch.setattr(CpuChart, "draw", broken)
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        app.redraw(force=True)
        await pilot.pause()
        chart = app.query_one("#cpu")
        assert chart.failed == "could not draw this chart: IndexError: list index out of range"
        assert "IndexError" in str(chart.render())
        # plotext itself failing while it lays the figure out (an IndexError in build): same
        monkeypatch.undo()
        monkeypatch.setattr(chart.plt, "build", lambda: [][1])
        now = app.session.clock()
        app.session.apply(
            [
                CpuSample(now - 10**9 * k, [10.0, 20.0], {}, 5.0, 50.0, window_ns=10**8)
                for k in (2, 1)
            ]
        )
        chart.update_from(app.session, force=True)
        assert "IndexError" in str(chart.render())
        await pilot.press("plus")  # the app is alive and answers keys
        assert app.session.config.workers == 3 and app.is_running


async def test_an_unexpected_error_exits_non_zero_with_the_traceback_in_a_log(tmp_path):
    app = make_app(tmp_path)

    def explode():
        raise RuntimeError("boom in a timer")

    with pytest.raises(RuntimeError):
        async with app.run_test(size=SIZE) as pilot:
            app.set_timer(0.01, explode)
            await pilot.pause(0.2)
    assert app.return_code == 1
    assert app.crash_log is not None and app.crash_log.parent == tmp_path
    text = app.crash_log.read_text()
    assert "Traceback" in text and "boom in a timer" in text


async def test_live_mode_pools_its_runs_into_one_row_per_configuration(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")  # a single run: a row of its own
        await until(app, lambda: app.session.runs)
        await pilot.press("space")
        await until(app, lambda: len(app.session.runs) >= 4)
        app.profile.refresh_panes()  # what a key press redraws, while a live run is going
        assert "live mode ON" in settings_text(app)
        await pilot.press("escape")
        # the live runs made before esc may still wait to be drained (hundreds a second)
        engine = app.link.engine
        await until(app, lambda: not app.profile.busy and engine.settled)
        table = app.query_one(RunsTable)
        live = len(app.session.runs) - 1
        assert live >= 3 and table.row_count == 2
        # by name: a busy machine's wider `ok busy` drops the `#` column at this width
        assert cell(table, 1, "runs") == str(live)
        entry = app.session.table_entries()[-1]
        assert len(entry[3].result.times_ms) == live * 2  # every repeat of every live run


async def test_the_runs_table_picks_the_run_on_the_timeline_and_keys_step_repeats(tmp_path):
    cfg = RunConfig("conv2", workers=2, batch=4, repeats=3, warmup=0)
    app = make_app(tmp_path, config=cfg)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await until(app, lambda: app.session.runs)
        await pilot.press("minus", "r")
        await until(app, lambda: len(app.session.runs) == 2)
        timeline = app.query_one("#timeline")
        assert timeline.view.run == 2 and len(timeline.view.lanes) == 1
        assert timeline.view.repeat == timeline.view.median_repeat
        await pilot.press("full_stop")
        assert timeline.view.repeat != timeline.view.median_repeat
        table = app.query_one(RunsTable)
        table.focus()
        await pilot.press("up")
        assert app.session.selected == 1
        assert timeline.view.run == 1 and len(timeline.view.lanes) == 2
        spans = app.session.runs[0].spans
        shown = {s for lane in timeline.view.lanes for s in lane.spans}
        assert shown == {s for s in spans if s.repeat == timeline.view.repeat}
        await pilot.press("down")  # the last row: follow the newest run again
        assert app.session.selected is None and timeline.view.run == 2


async def test_cpu_is_sampled_before_any_run(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE):
        app.start_engine()
        await until(app, lambda: len(app.session.cpu) >= 2, timeout=10)
        assert not app.session.runs
        chart = app.query_one("#cpu")
        chart.update_from(app.session, force=True)
        assert chart.message is None and not chart.failed  # lines, not a placeholder
        header = str(app.query_one("#machine").render())
        assert "partui" in header and "other programs" in header


def test_crash_log_falls_back_to_the_temporary_folder(tmp_path):
    from partui.tui.dashboard.crash import write_crash_log

    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    try:
        raise ValueError("x")
    except ValueError as exc:
        path = write_crash_log(exc, blocked / "sub")
    assert path is not None and path.parent != blocked and "ValueError" in path.read_text()
    path.unlink()


def test_engine_thread_app_uses_the_typed_config(tmp_path):
    app = PartuiApp(
        snapshot_dir=tmp_path,
        config=RunConfig("conv2", workers=2),
        engine_factory=EngineThread,
        live_loop=False,
    )
    assert isinstance(app.session.config, RunConfig)


async def test_a_run_asked_for_reads_queued_then_running_then_idle(tmp_path):
    cfg = RunConfig("conv2", kernel="loops", workers=2, batch=2, repeats=20, warmup=0)
    # the engine in its own process, as partui runs it: an in-process engine thread here
    # never started its run in 2 of 3 fresh-clone suites, after the tabs' tests
    app = PartuiApp(
        snapshot_dir=tmp_path, config=cfg, engine_factory=EngineProcess, live_loop=False
    )

    def mode() -> str:
        return str(app.query_one("#machine").render()).split("%")[0]

    async with app.run_test(size=SIZE) as pilot:
        assert " idle " in mode()
        await pilot.press("r")  # no event drained yet: asked for, not started
        assert " running " in mode() and "queued: conv2" in settings_text(app)
        await until(app, lambda: app.session.running is not None)
        assert "running: conv2" in settings_text(app)
        await pilot.pause()
        assert " running " in mode()
        await until(app, lambda: app.session.runs and app.session.running is None, timeout=60)
        await pilot.pause()
        assert " idle " in mode()
