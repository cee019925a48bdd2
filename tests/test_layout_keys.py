"""Pilot tests of the dashboard's keys at every size: selection is the app's state, not a widget's.

The live loop is off and no run starts, so these take a fraction of a second each.
"""

from __future__ import annotations

import re

import pytest

from partui.profiles.records.config import RunConfig
from partui.profiles.service.engine import EngineThread
from partui.profiles.system.machine import MachineInfo
from partui.tui.dashboard.app import PartuiApp
from partui.tui.dashboard.widgets.settings import SettingsPane

SIZES = [(80, 24), (120, 40), (200, 60)]


def make_app(tmp_path, config=None, engine=EngineThread) -> PartuiApp:
    return PartuiApp(
        snapshot_dir=tmp_path,
        config=config or RunConfig("conv2", workers=2),
        engine_factory=engine,
        live_loop=False,
    )


async def screen_of(pilot, kind, tries: int = 100):
    """The app's screen once it is a `kind` (a pushed screen mounts a moment after its key)."""
    for _ in range(tries):
        if isinstance(pilot.app.screen, kind) and pilot.app.screen.is_mounted:
            await pilot.pause()
            return pilot.app.screen
        await pilot.pause(0.05)
    raise AssertionError(f"no {kind.__name__} came up")


def settings_text(app) -> str:
    return str(app.query_one(SettingsPane).render())


@pytest.mark.parametrize("size", SIZES)
async def test_down_reaches_network_under_pipeline(tmp_path, size):
    app = make_app(tmp_path)
    async with app.run_test(size=size) as pilot:
        await pilot.press("T", "T")  # batch -> none -> pipeline: "not applicable" lines
        assert app.session.config.strategy == "pipeline"
        seen = []
        for _ in range(15):
            await pilot.press("down")
            seen.append(app.session.config.layer)
        assert seen[-1] == "network"
        assert seen[:10] == [
            "pool2",
            "gelu2",
            "conv3",
            "pool3",
            "gelu3",
            "linear1",
            "linear2",
            "linear3",
            "logsoftmax",
            "network",
        ]
        await pilot.pause()
        text = settings_text(app)
        assert "network" in text.split("\n")[0] and "✓ valid" in text
        await pilot.press("up")
        assert app.session.config.layer == "logsoftmax"
        await pilot.press("down")
        assert app.session.config.layer == "network"


async def test_redraws_and_resizes_never_move_the_layer(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(4):
            await pilot.press("down")
        assert app.session.config.layer == "pool3"
        for size in [(80, 24), (200, 60), (100, 30), (120, 40)]:
            await pilot.resize_terminal(*size)
            await pilot.pause()
            app.redraw(force=True)
            await pilot.press("t", "e", "plus")  # the settings pane changes height
            await pilot.pause()
            assert app.session.config.layer == "pool3"
        assert "pool3" in settings_text(app).split("\n")[0]


async def test_the_layer_list_shows_the_chosen_layer(tmp_path):
    from partui.tui.dashboard.widgets.layer_list import LayerList

    app = make_app(tmp_path, RunConfig("network", strategy="pipeline", workers=2))
    async with app.run_test(size=(80, 24)) as pilot:
        layers = app.query_one(LayerList)
        assert layers.get_option_at_index(layers.highlighted).id == "network"
        await pilot.press("up", "up")
        await pilot.pause()
        assert app.session.config.layer == "linear3"
        assert layers.get_option_at_index(layers.highlighted).id == "linear3"


class RecordingEngine:
    """Stands in for the engine process: records what the dashboard asks of it, runs nothing."""

    def __init__(self):
        self.calls = []

    def start(self):
        self.calls.append("start")

    def submit(self, cfg):
        self.calls.append(("submit", cfg.layer))

    def set_live(self, cfg):
        self.calls.append(("live", cfg is not None))

    def cancel(self, drop_queued=False):
        self.calls.append("cancel")

    def drain(self, *args, **kwargs):
        return []

    def close(self):
        self.calls.append("close")


class StoppableExperiment:
    """An experiment that runs until it is stopped (and sends nothing)."""

    stopped = False

    def stop(self):
        self.stopped = True

    def drain(self):
        return []

    def close(self):
        pass


async def test_escape_stops_what_the_tab_in_view_runs(tmp_path):
    from partui.tui.dashboard.keys import KeyBar
    from partui.tui.dashboard.tabs.lab import MemLabTab

    app = make_app(tmp_path, engine=RecordingEngine)
    async with app.run_test(size=(120, 40)) as pilot:
        keys = app.query_one(KeyBar)
        assert "esc  stop run" in str(keys.render())
        await pilot.press("space")
        assert app.profile.live
        tab = app.query_one(MemLabTab)
        experiment = tab.runner = StoppableExperiment()  # an experiment running on the lab tab
        await pilot.press("m")
        await pilot.pause()
        assert "esc  stop experiment" in str(keys.render())
        await pilot.press("escape")  # the lab tab: the experiment stops, live mode goes on
        assert experiment.stopped
        assert app.profile.live and "cancel" not in app.engine.calls
        tab.runner = experiment = StoppableExperiment()
        await pilot.press("m")
        await pilot.pause()
        assert "esc  stop run" in str(keys.render())
        await pilot.press("escape")  # the profile tab: live mode stops, the experiment goes on
        assert not app.profile.live and "cancel" in app.engine.calls
        assert not experiment.stopped


async def test_nonsense_settings_warn_but_still_run(tmp_path):
    app = PartuiApp(
        snapshot_dir=tmp_path,
        config=RunConfig("conv2", workers=2, batch=2),
        engine_factory=RecordingEngine,
        live_loop=False,
        machine=MachineInfo(logical_cores=2),
    )
    async with app.run_test(size=(120, 40)) as pilot:
        assert "⚠" not in settings_text(app)
        await pilot.press("left_square_bracket")  # batch 1 over 2 workers: one task
        text = settings_text(app)
        assert "✓ valid" in text and "1 task for 2 workers: 1 idle (batch 1)" in text
        await pilot.press("right_square_bracket", "plus")  # batch 2, 3 workers on 2 cores
        text = settings_text(app)
        assert "3 workers, 2 cores" in text and "2 tasks for 3 workers" in text
        await pilot.press("r")  # a warning, not a refusal
        assert ("submit", "conv2") in app.engine.calls


def test_partui_run_prints_the_warning_and_runs(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "partui.tui.cli.main",
            "run",
            "--layer",
            "pool3",
            "--batch",
            "1",
            "--workers",
            "2",
            "--repeat",
            "1",
            "--warmup",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "warning: 1 task for 2 workers: 1 idle (batch 1)" in proc.stderr
    assert "pool3" in proc.stdout


async def test_export_screenshot_has_no_toasts_over_it(tmp_path):
    import asyncio

    app = make_app(tmp_path, engine=RecordingEngine)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        app.notify("a toast that covers the table", timeout=30)
        await pilot.pause()
        assert "covers" in app.export_screenshot()  # the toast is in the picture
        await pilot.press("x")
        for _ in range(100):
            svgs = list(tmp_path.glob("*.svg"))
            if svgs:
                break
            await asyncio.sleep(0.05)
        svg = svgs[0].read_text()
        assert "settings" in svg and "covers" not in svg
        for _ in range(100):  # the toast comes once it is written (a few frames when loaded)
            await pilot.pause()
            if "exported" in app.export_screenshot():
                break
            await asyncio.sleep(0.05)
        assert "exported" in app.export_screenshot()


async def test_browser_marks_show_a_and_b_and_lists_exports_apart(tmp_path):
    import json

    from rich.text import Text
    from screen_fixtures import MACHINE, add_fixed_runs, screen_text

    from partui.profiles.store import snapshot
    from partui.tui.dashboard.screens.browser import SnapshotBrowser
    from partui.tui.dashboard.screens.compare import CompareScreen
    from partui.tui.dashboard.snapshots import session_snapshot

    app = PartuiApp(
        snapshot_dir=tmp_path,
        config=RunConfig("conv2", workers=2),
        engine_factory=RecordingEngine,
        live_loop=False,
        machine=MACHINE,
    )
    async with app.run_test(size=(120, 40)) as pilot:
        add_fixed_runs(app)
        for name in ("partui-a.json", "partui-b.json"):
            snapshot.save(session_snapshot(app.session, MACHINE), tmp_path / name)
        (tmp_path / "partui-a.trace.json").write_text(json.dumps({"traceEvents": []}))
        (tmp_path / "notes.json").write_text("[1, 2]")
        await pilot.press("o")
        browser = await screen_of(pilot, SnapshotBrowser)
        table = browser.query_one("DataTable")

        def column(i):
            return [str(table.get_cell_at((r, i))) for r in range(table.row_count)]

        files = column(1)
        assert sorted(files[:2]) == ["partui-a.json", "partui-b.json"]  # snapshots first
        assert sorted(files[2:]) == ["notes.json", "partui-a.trace.json"]  # then the others
        reasons = column(5)[2:]
        trace_reason = reasons[files[2:].index("partui-a.trace.json")]
        assert "not a snapshot" in trace_reason and "trace" in trace_reason
        assert all(
            isinstance(table.get_cell_at((r, 1)), Text)
            and "dim" in str(table.get_cell_at((r, 1)).style)
            for r in (2, 3)
        )
        await pilot.press("space", "down", "space")
        assert column(0)[:2] == ["A", "B"]
        await pilot.pause()
        shown = screen_text(app)  # the marks are on screen, not only in the cells
        assert re.search(r"\bA\s+partui-[ab]\.json", shown)
        assert re.search(r"\bB\s+partui-[ab]\.json", shown)
        await pilot.press("down", "space")  # an export: neither markable nor openable
        assert column(0) == ["A", "B", "", ""]
        await pilot.press("enter")
        assert app.screen is browser
        await pilot.press("c")
        await screen_of(pilot, CompareScreen)


async def test_palette_shows_keys_as_typed(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)):
        helps = {c.title: c.help for c in app.get_system_commands(app.screen)}
        assert helps["Batch /2"] == "key: [" and helps["Batch x2"] == "key: ]"
        assert helps["Workers+"] == "key: +" and helps["Help"] == "key: ?"
        assert not any("square_bracket" in h or "equals_sign" in h for h in helps.values())


async def test_keys_typed_ahead_all_count(tmp_path):
    """↓ held down: each key moves on from the last, before the app has taken the one before."""
    from partui.tui.dashboard.widgets.layer_list import LayerList

    app = make_app(tmp_path, RunConfig("conv2", strategy="none", workers=2))
    async with app.run_test(size=(80, 24)) as pilot:
        layers = app.query_one(LayerList)
        for i in range(12):
            layers.action_cursor_down()  # no message handled in between
            if i % 3 == 1:
                app.profile.show_layer()  # the app redraws with the layer it has taken so far
        await pilot.pause()
        assert app.session.config.layer == "network"
        assert layers.get_option_at_index(layers.highlighted).id == "network"


async def test_the_key_bar_is_laid_out_for_the_new_width_when_the_terminal_shrinks(tmp_path):
    from partui.tui.dashboard.keys import KeyBar

    app = make_app(tmp_path, engine=RecordingEngine)
    async with app.run_test(size=(200, 60)) as pilot:
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        lines = str(app.query_one(KeyBar).render()).splitlines()
        # every line fits the 120 columns, and no key is parted from what it does
        assert lines and all(len(line) <= 120 for line in lines), lines
        assert not any(line.rstrip().endswith(" ?") for line in lines), lines


async def test_a_long_executor_name_keeps_its_key_apart():
    """native-region is as long as the value column was: the column widens, so the key hint
    never runs into the name."""
    from dataclasses import replace

    from screen_fixtures import fixed_app

    from partui.tui.dashboard.widgets.settings import SettingsPane

    app = fixed_app()
    async with app.run_test(size=(120, 40)) as pilot:
        app.session.config = replace(app.session.config, executor="native-region")
        pane = app.query_one(SettingsPane)
        pane.show(app.session, live=False)
        await pilot.pause()
        lines = str(pane.render()).splitlines()
        assert any(line.split() == ["executor", "native-region", "e/E"] for line in lines)
        hints = ["↑↓", "t/T", "k", "e/E", "+/-", "[ ]"]
        starts = {line.rfind(hint) for line, hint in zip(lines[:6], hints, strict=True)}
        assert len(starts) == 1, lines[:6]  # every key hint in one column
