"""Pilot tests: drive the dashboard's keys, with the engine on a thread of the test process.

The app's live timer is off (live_loop=False): the tests call `app.tick()` and
wait on the model's own state, never on the whole process going idle.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from waiting import budget, wait_until_async

from partui.profiles.records.config import RunConfig
from partui.profiles.service.engine import EngineThread
from partui.tui.dashboard.app import PartuiApp
from partui.tui.dashboard.widgets.runs_table import RunsTable
from partui.tui.dashboard.widgets.settings import SettingsPane

SIZE = (120, 40)


def make_app(tmp_path, **kwargs) -> PartuiApp:
    cfg = kwargs.pop("config", RunConfig("conv2", workers=2, batch=4, repeats=2, warmup=0))
    return PartuiApp(
        snapshot_dir=tmp_path, config=cfg, engine_factory=EngineThread, live_loop=False, **kwargs
    )


async def until(app: PartuiApp, predicate, timeout: float = 30.0) -> None:
    """Tick the app (drain engine events) until `predicate()` holds, then redraw."""
    await wait_until_async(
        predicate, timeout, between=app.tick, message="timed out waiting for the dashboard"
    )
    app.redraw(force=True)


def cell(table, row: int, column: str):
    """A runs-table cell by its column's name: a narrow or busy table drops columns."""
    headers = [str(c.label) for c in table.ordered_columns]
    return table.get_row_at(row)[headers.index(column)]


def settings_text(app) -> str:
    return str(app.query_one(SettingsPane).render())


async def test_keys_change_the_configuration(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        assert app.session.config.strategy == "batch"
        await pilot.press("t")
        assert app.session.config.strategy == "channel"
        await pilot.press("T", "k", "e")
        c = app.session.config
        assert (c.strategy, c.kernel, c.executor) == ("batch", "loops", "threads-dynamic")
        await pilot.press("e")
        assert app.session.config.executor == "processes"
        await pilot.press("plus")
        assert app.session.config.workers == 3
        await pilot.press("minus", "minus")
        assert app.session.config.workers == 1
        await pilot.press("right_square_bracket")
        assert app.session.config.batch == 8
        assert "workers  1" in settings_text(app)


async def test_layer_list_selects_the_layer(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        app.query_one("#layers").focus()
        await pilot.press("down")
        assert app.session.config.layer == "pool2"


async def test_invalid_combination_is_shown_not_changed(tmp_path):
    app = make_app(tmp_path, config=RunConfig("linear1", strategy="spatial", workers=2))
    async with app.run_test(size=SIZE) as pilot:
        assert app.session.config.strategy == "spatial"  # kept as chosen
        assert "not applicable" in settings_text(app)
        await pilot.press("r")
        assert not app.profile.busy and not app.session.runs


async def test_run_once_fills_table_timeline_and_is_verified(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await until(app, lambda: app.session.runs)
        run = app.session.runs[-1]
        assert run.ok and run.config.layer == "conv2"
        assert app.query_one(RunsTable).row_count == 1
        # Every task of every repeat is on the timeline once, on a worker index 0..1 that
        # stands for one pool thread. Which thread takes which task is up to the pool: on a
        # busy machine one thread may take both, so the set of workers seen is not promised.
        spans = list(app.session.spans)
        assert sorted((s.repeat, s.task) for s in spans) == [
            (r, t) for r in range(run.config.repeats) for t in range(run.tasks)
        ]
        assert {s.worker for s in spans} <= {0, 1}
        for w in {s.worker for s in spans}:
            assert len({s.tid for s in spans if s.worker == w}) == 1
        assert app.query_one("#timeline").draws >= 1


async def test_live_mode_picks_up_changes_and_escape_cancels(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("space")
        assert app.profile.live
        await until(app, lambda: len(app.session.runs) >= 2)
        await pilot.press("t")  # channel: takes effect at the next run
        await until(app, lambda: app.session.runs[-1].config.strategy == "channel")
        await pilot.press("escape")
        assert not app.profile.live
        await until(app, lambda: not app.profile.busy)
        for _ in range(10):  # events of a run that ended as Esc was pressed may still come
            app.tick()
            await asyncio.sleep(0.03)
        count = len(app.session.runs)
        for _ in range(20):
            app.tick()
            await asyncio.sleep(0.03)
        assert len(app.session.runs) == count  # nothing new started


async def test_escape_cancels_a_long_loops_run_quickly(tmp_path):
    cfg = RunConfig("conv2", kernel="loops", workers=2, warmup=0)
    app = make_app(tmp_path, config=cfg)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await until(app, lambda: app.session.running is not None)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await pilot.press("escape")
        await until(app, lambda: not app.profile.busy, timeout=5)
        assert loop.time() - t0 < budget(1.5)  # includes the pilot's own key delivery
        assert not app.session.runs


async def test_save_snapshot_and_reopen_read_only(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await until(app, lambda: app.session.runs)
        await pilot.press("s")
        files = list(tmp_path.glob("*.json"))
        assert len(files) == 1
        data = json.loads(files[0].read_text())
        assert data["runs"][0]["config"]["layer"] == "conv2"
        app.load_snapshot(files[0])
        assert app.profile.viewing is not None and app.profile.viewing.read_only
        assert len(app.profile.viewing.runs) == 1
        await pilot.press("t")  # read-only: no change
        assert app.profile.viewing.config.strategy == "batch"
        await pilot.press("l")
        assert app.profile.viewing is None


async def test_bad_snapshot_is_a_message_not_a_crash(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 1, "runs": [')
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE):
        app.load_snapshot(bad)
        assert app.profile.viewing is None


async def test_sweep_runs_every_worker_count(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("w")
        top = app.session.max_workers
        await until(app, lambda: len(app.session.runs) >= top, timeout=60)
        assert [r.config.workers for r in app.session.runs] == list(range(1, top + 1))
        assert app.session.baseline_for(app.session.config) is not None


async def test_help_screen_lists_the_keys(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        text = str(app.screen.query_one("Static").render())
        for words in (
            "run the configuration once",
            "live mode",
            "snapshot",
            str(tmp_path),
            "honest baseline",
            "efficiency",
            "on-CPU",
            "below 1",
            "imbalance",
            "worker timeline",
            "Amdahl",
        ):
            assert words in text
        lines = text.splitlines()
        keys = lines[
            lines.index("Keys of the profile tab") + 1 : lines.index("Columns of the runs table")
            - 1
        ]
        from partui.tui.dashboard.keys import key_label
        from partui.tui.dashboard.tabs.profile import ProfileTab

        for binding in [*ProfileTab.BINDINGS, *app.BINDINGS]:  # every key, its words in one column
            assert any(line[2:10].strip() == key_label(binding.key) for line in keys)
        assert {len(line) - len(line[10:].lstrip()) for line in keys if line.strip()} == {10}
        await pilot.press("escape")
        assert app.screen is app.screen_stack[0]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_small_and_large_terminals_render(tmp_path, size):
    app = make_app(tmp_path)
    async with app.run_test(size=size) as pilot:
        await pilot.press("r")
        await until(app, lambda: app.session.runs)
        svg = app.export_screenshot()
        assert "conv2" in svg and "settings" in svg


async def test_lost_worker_process_is_reported_and_dashboard_keeps_working(tmp_path):
    import psutil

    from partui.profiles.service.engine import EngineProcess

    cfg = RunConfig("conv2", kernel="loops", executor="processes", workers=2, warmup=0)
    app = PartuiApp(
        snapshot_dir=tmp_path, config=cfg, engine_factory=EngineProcess, live_loop=False
    )
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")

        def pool_workers():  # the engine process -> its fork server -> the pool's workers
            return [
                p
                for p in psutil.Process(app.engine.pid).children(recursive=True)
                if "forkserver" in " ".join(p.parent().cmdline())
            ]

        await until(app, lambda: app.session.running is not None and len(pool_workers()) >= 2)
        pool_workers()[0].kill()
        await until(app, lambda: app.session.failures, timeout=20)
        position, config, error = app.session.failures[-1]
        assert "worker" in error and config.executor == "processes"
        table = app.query_one(RunsTable)
        assert "FAIL" in str(cell(table, table.row_count - 1, "ok"))
        # the dashboard keeps working: the next run gets a new pool
        app.session.set(kernel="vectorized", batch=4)
        await pilot.press("r")
        await until(app, lambda: app.session.runs, timeout=30)
        assert app.session.runs[-1].ok


async def test_memory_lab_tab_runs_an_experiment_live_and_saves_it(tmp_path):
    from partui.tui.dashboard.tabs.lab import MemLabTab

    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("m")
        tab = app.query_one(MemLabTab)
        tab.quick = True
        assert app.focused.id == "experiments"
        names = [o.id for o in app.focused.options]
        app.focused.highlighted = names.index("false-sharing")
        await pilot.press("enter")
        await until(app, lambda: tab.result is not None, timeout=60)
        assert tab.points and tab.result.experiment == "false-sharing"
        assert "atomic_adjacent_over_padded" in tab.result.summary
        assert str(app.query_one("#memlab-text").render()) == tab.result.explanation
        assert "cache line" in tab.result.explanation
        await pilot.press("s")
        data = json.loads(next(tmp_path.glob("*.json")).read_text())
        assert data["memlab"][0]["experiment"] == "false-sharing"


async def test_memory_lab_escape_stops_an_experiment(tmp_path):
    from partui.tui.dashboard.tabs.lab import MemLabTab

    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("m")
        tab = app.query_one(MemLabTab)
        tab.quick = True
        tab.start("stride")
        await until(app, lambda: tab.points, timeout=30)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await pilot.press("escape")
        await until(app, lambda: not tab.running, timeout=5)
        assert loop.time() - t0 < 2
        assert "stopped" in str(app.query_one("#memlab-text").render())


async def test_export_writes_trace_csv_and_screenshot(tmp_path):
    # a run long enough (~0.2 s) to carry CPU samples, whose counters the trace holds
    app = make_app(tmp_path, config=RunConfig("conv2", workers=2, batch=8, repeats=300, warmup=0))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await until(app, lambda: app.session.runs)
        await pilot.press("x")
        trace = next(tmp_path.glob("*.trace.json"))
        events = json.loads(trace.read_text())["traceEvents"]
        tasks = [e for e in events if e["ph"] == "X" and e.get("cat") != "repeat"]
        assert len([e for e in tasks if e["name"] != "repeat"]) >= len(app.session.runs[0].spans)
        assert any(e["ph"] == "C" for e in events)
        assert next(tmp_path.glob("*.csv")).read_text().count("\n") >= 2
        for _ in range(100):  # the screenshot is taken once the toasts are gone
            if list(tmp_path.glob("*.svg")):
                break
            await asyncio.sleep(0.05)
        assert "<svg" in next(tmp_path.glob("*.svg")).read_text()


async def test_every_key_action_is_in_the_command_palette(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE):
        titles = {c.title for c in app.get_system_commands(app.screen)}
        for binding in app.BINDINGS:
            assert binding.description in titles or binding.action == "quit"


def test_opening_a_bad_snapshot_file_is_refused_on_one_line(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    proc = subprocess.run(
        [sys.executable, "-m", "partui.tui.cli.main", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "bad.json" in proc.stderr


async def test_browser_marks_two_snapshots_and_compares_them(tmp_path):
    from partui.tui.dashboard.screens.browser import SnapshotBrowser
    from partui.tui.dashboard.screens.compare import CompareScreen

    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(2):
            await pilot.press("r")
            count = len(app.session.runs)
            await until(app, lambda: len(app.session.runs) > count)
            await pilot.press("s")
            await asyncio.sleep(1.1)  # file names carry the second they were saved
        assert len(list(tmp_path.glob("*.json"))) == 2
        await pilot.press("o")
        assert isinstance(app.screen, SnapshotBrowser)
        await pilot.press("space", "down", "space", "c")
        assert isinstance(app.screen, CompareScreen)
        text = str(app.screen.query_one("#compare-text").render())
        assert "same machine" in text and "conv2 batch/vectorized/threads w=2 b=4" in text
        await pilot.press("escape", "escape")
        assert not isinstance(app.screen, (CompareScreen, SnapshotBrowser))
