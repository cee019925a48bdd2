"""The roofline on the profile tab: f puts it in place of the four charts (and back), the
compact layout's c reaches it, the runs table's "of roof" column, and its SVG picture.

The roofs are made up here (round figures), so the pictures depend only on the code."""

from __future__ import annotations

from screen_fixtures import add_fixed_runs, fixed_app, fixed_result
from test_roofline import roof_set

from partui.kernels.model.layers import get_layer
from partui.profiles.records.config import RunConfig
from partui.profiles.records.events import RunFinished, RunStarted
from partui.tui.dashboard.charts.roofline import RooflineChart, roof_lines, session_points
from partui.tui.dashboard.tabs.profile import ProfileTab
from partui.tui.dashboard.widgets.runs_table import RunsTable

CFG = RunConfig("conv2", workers=2, repeats=3)


def with_runs(app) -> None:
    """The fixed roofs; conv2 at 1 and 2 workers, and one gelu1 run (an earlier, faint point)."""
    app.query_one(RooflineChart).use_roofs(roof_set())
    gelu = fixed_result(RunConfig("gelu1", workers=1, repeats=3), 1.2, 9)
    app.handle_events([RunStarted(9, gelu.config, 0.0), RunFinished(9, gelu)])
    add_fixed_runs(app)


def test_roof_lines_meet_the_peak_at_their_ridges():
    rs = roof_set()
    lines = {ln.name: ln for ln in roof_lines(rs, 1, 0.01, 1000.0)}
    assert set(lines) == {"L1", "L2", "L3", "DRAM", "peak"}
    (x0, y0), (x1, y1) = lines["DRAM"].points
    assert (x0, y0) == (0.01, 10.0 * 0.01) and (x1, y1) == (10.0, 100.0)  # ridge 100/10
    assert lines["peak"].points == ((0.5, 100.0), (1000.0, 100.0))  # from L1's ridge on


async def test_f_shows_the_roofline_alone_and_the_table_says_of_roof():
    app = fixed_app(CFG)
    async with app.run_test(size=(120, 40)) as pilot:
        tab = app.query_one(ProfileTab)
        chart = app.query_one(RooflineChart)
        with_runs(app)
        await pilot.pause()
        assert not chart.display and all(c.display for c in tab.charts()[:4])
        await pilot.press("f")
        await pilot.pause()
        assert chart.display and not any(c.display for c in tab.charts()[:4])
        assert chart.size.width > 60  # the whole charts pane, not a quarter of it
        current, others = session_points(chart.roofs, app.session)
        assert current is not None and current.workers == 2 and len(others) == 2
        # conv2 b64 at 3.6 ms: 285 MFLOP / 3.6 ms = 79 GFLOP/s against the 2-thread peak
        gflops = get_layer("conv2").flops(64) / 3.6e6
        assert current.of_roof == gflops / 180.0 and current.bound == "compute"
        chart.update_from(app.session, force=True)
        assert "44% of roof (compute, L3)" in chart.caption(app.session, current, chart.roofs)
        # the runs table: achieved / attainable of each run, the gelu1 run's too
        table = app.query_one(RunsTable)
        table.show(app.session, chart.roofs)
        cells = [str(table.get_row_at(i)[-1]) for i in range(table.row_count)]
        gelu = get_layer("gelu1").flops(64) / 1.2e6 / (40.0 * 1.0)  # L3 at 1 FLOP/byte
        one = get_layer("conv2").flops(64) / 6.4e6 / 100.0
        assert cells == [f"{gelu:.0%}", f"{one:.0%}", f"{current.of_roof:.0%}"]
        await pilot.press("f")
        await pilot.pause()
        assert not chart.display and all(c.display for c in tab.charts()[:4])


async def test_no_roofs_says_how_to_measure_them():
    app = fixed_app(CFG)
    async with app.run_test(size=(120, 40)) as pilot:
        chart = app.query_one(RooflineChart)
        chart.use_roofs(None)
        await pilot.press("f")
        chart.update_from(app.session, force=True)
        assert chart.message is not None and "partui roofline" in chart.message
        # measured meanwhile (`partui roofline` in another terminal): f reads them again
        from dataclasses import replace

        from partui.profiles.roofline import roofs as kept

        assert kept.save(replace(roof_set(), machine_key=kept.machine_key())) is None
        await pilot.press("f", "f")
        chart.update_from(app.session, force=True)
        assert chart.roofs is not None and chart.roofs.compute(2) == 180.0
        table = app.query_one(RunsTable)
        add_fixed_runs(app)
        table.show(app.session, None)
        assert str(table.get_row_at(0)[-1]) == "-"


async def test_compact_layout_reaches_the_roofline_with_c():
    app = fixed_app(CFG)
    async with app.run_test(size=(100, 30)) as pilot:
        tab = app.query_one(ProfileTab)
        chart = app.query_one(RooflineChart)
        chart.use_roofs(roof_set())
        for _ in range(4):
            await pilot.press("c")
        await pilot.pause()
        assert chart.display and sum(c.display for c in tab.charts()) == 1
        await pilot.press("c")
        await pilot.pause()
        assert not chart.display and tab.charts()[0].display


def test_roofline_svg(snap_compare):
    async def run_before(pilot) -> None:
        with_runs(pilot.app)
        await pilot.press("f")
        pilot.app.redraw(force=True)
        await pilot.pause()

    assert snap_compare(fixed_app(CFG), terminal_size=(120, 40), run_before=run_before)
