"""Charts give way to keys: after a key press, and on a machine too busy to draw them at
their usual pace, the charts wait; the key's own change is drawn at once."""

from __future__ import annotations

import time
import traceback

from screen_fixtures import add_fixed_runs, fixed_app

from partui.tui.dashboard.charts.base import COST_SHARE, KEY_QUIET_S
from partui.tui.dashboard.charts.history import HistoryChart
from partui.tui.dashboard.charts.speedup import SpeedupChart
from partui.tui.dashboard.charts.worker_timeline import TimelineChart


def changed(chart) -> None:
    chart._drawn_version = None  # what the chart shows moved


async def test_a_key_press_holds_the_charts_back_for_a_moment():
    app = fixed_app()
    async with app.run_test(size=(120, 40)) as pilot:
        add_fixed_runs(app)
        await pilot.pause()
        chart = app.query_one(HistoryChart)
        chart.cost_s = 0.0
        pressed = time.monotonic()
        await pilot.press("plus")  # workers up: the settings pane shows it at once
        assert app.key_at >= pressed  # the press was noted
        app.key_at = time.monotonic()  # as if it were this instant (a slow machine's pilot)
        assert "workers  3" in str(app.query_one("SettingsPane").render())
        changed(chart)
        chart.cost_s = 0.0
        before = chart.draws
        chart.tick()
        assert chart.draws == before  # held back: the key's frame holds no chart
        app.key_at -= KEY_QUIET_S
        chart.tick()
        assert chart.draws == before + 1


async def test_a_costly_chart_waits_in_proportion_to_its_cost():
    app = fixed_app()
    async with app.run_test(size=(120, 40)) as pilot:
        add_fixed_runs(app)
        await pilot.pause()
        for chart in (app.query_one(TimelineChart), app.query_one(SpeedupChart)):
            assert chart.cost_s > 0  # measured when it was drawn
            chart.cost_s = 0.2  # a frame took 200 ms: a loaded machine
            chart.drawn_at = time.monotonic()
            changed(chart)
            before = chart.draws
            chart.tick()
            assert chart.draws == before
            # the four charts on screen share COST_SHARE of a core: 200 ms x 4 / 0.05 = 16 s
            assert chart.frame_wait_s() == 0.2 * 4 / COST_SHARE
            chart.drawn_at -= chart.frame_wait_s() / 2
            chart.tick()
            assert chart.draws == before
            chart.drawn_at -= chart.frame_wait_s() / 2
            chart.tick()
            assert chart.draws == before + 1


async def test_keys_repaint_the_panes_without_laying_the_screen_out_again(monkeypatch):
    """A key's change is repainted in place: a layout pass re-renders every pane and chart
    (about 100 ms of CPU per key on a 2-core machine before). A warning that comes and goes
    (3 workers on 2 cores) grows the settings pane once, then leaves it as it is."""
    from textual.screen import Screen

    from partui.tui.dashboard.widgets.settings import SettingsPane

    layouts = []
    original = Screen._refresh_layout

    def counted(self, *args, **kwargs):
        layouts.append("".join(traceback.format_stack(limit=12)))  # who asked, if it fails
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Screen, "_refresh_layout", counted)
    app = fixed_app()
    async with app.run_test(size=(120, 40)) as pilot:
        add_fixed_runs(app)
        await pilot.pause()
        pane = app.query_one(SettingsPane)
        await pilot.press("minus")
        while "⚠" not in str(pane.render()):  # one worker more than this machine's CPUs
            assert app.session.config.workers < 512
            await pilot.press("plus")
        rows = pane.rows_needed
        # the runs just added may still lay the screen out (the table's rows, a chart's
        # first frame), later on a loaded machine: wait for 0.3 s without a layout pass
        for _ in range(50):
            layouts.clear()
            await pilot.pause(0.3)
            if not layouts:
                break
        assert not layouts, "laid out again and again with no key pressed:\n" + layouts[0]
        for key in ["minus", "plus", "t", "T", "minus", "plus"]:
            await pilot.press(key)
            warned = "⚠" in str(pane.render())
            assert warned == (key != "minus")  # the warning goes and comes back
        assert pane.rows_needed == rows
        assert not layouts, layouts[0]
