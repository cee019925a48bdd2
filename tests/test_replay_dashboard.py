"""Replaying a saved run in the dashboard: ← / → step through its timed repeats, home / end
jump to the fastest / slowest, and the timeline, the CPU chart, the speedup point and the
header follow; in a live session the keys stay with the widgets."""

from __future__ import annotations

import pytest
from replay_fixtures import TIMES, replay_snapshot
from screen_fixtures import fixed_app
from waiting import wait_until_async

from partui.profiles.store.snapshot import save
from partui.tui.dashboard.charts.worker_timeline import TimelineChart
from partui.tui.dashboard.widgets.layer_list import LayerList
from partui.tui.dashboard.widgets.runs_table import RunsTable

pytestmark = pytest.mark.ui
SIZE = (120, 40)


def lane_spans(timeline: TimelineChart) -> list[tuple]:
    return [
        (s.repeat, s.worker, s.start_ns, s.end_ns)
        for lane in timeline.view.lanes
        for s in lane.spans
    ]


def expected_spans(snap, run: int, repeat: int) -> list[tuple]:
    spans = [s for s in snap.runs[run - 1].spans if s.repeat == repeat]
    return sorted((s.repeat, s.worker, s.start_ns, s.end_ns) for s in spans)


async def test_arrows_step_the_repeats_of_a_snapshot_and_every_chart_follows(tmp_path):
    snap = replay_snapshot()
    path = save(snap, tmp_path / "replay.json")
    app = fixed_app(folder=tmp_path)
    heard: list = []
    async with app.run_test(size=SIZE) as pilot:
        app.load_snapshot(path)
        await pilot.pause()
        tab = app.profile
        timeline = app.query_one(TimelineChart)
        charts = [app.query_one(f"#{name}") for name in ("cpu", "speedup", "history")]
        cpu, speedup = charts[0], charts[1]
        app.screen.watch(tab, "picked", lambda pick: heard.append(pick), init=False)
        assert isinstance(app.focused, LayerList)  # where the focus is after opening
        # the last run, its median repeat first (TIMES: 12, 9, 15, 11, 10 ms)
        assert (tab.picked.run, tab.picked.repeat) == (2, 3)
        assert sorted(lane_spans(timeline)) == expected_spans(snap, 2, 3)
        assert "run 2, repeat 4 of 5, 11 ms (median 11), the median one" in app.activity.mode
        steps = [("right", 4), ("right", 0), ("left", 4), ("home", 1), ("end", 2)]
        for key, repeat in steps:
            drawn = [chart.draws for chart in charts]
            await pilot.press(key)
            await pilot.pause()
            assert tab.picked.repeat == repeat, key
            assert timeline.view.repeat == repeat and timeline.view.wall_ms == TIMES[repeat]
            assert sorted(lane_spans(timeline)) == expected_spans(snap, 2, repeat)
            # the timeline at once; the others once the keys have been quiet a moment
            await wait_until_async(
                lambda d=drawn: all(c.draws > n for c, n in zip(charts, d, strict=True)),
                5,
                message=f"the charts did not follow {key}",
            )
            assert not any(c.failed for c in charts)
        assert [p.repeat for p in heard] == [r for _, r in steps]
        assert "repeat 3 of 5, 15 ms (median 11), the slowest" in app.activity.mode
        assert "run 2" in cpu.border_title and not (cpu.message or cpu.failed)
        assert not (speedup.message or speedup.failed)
        await pilot.press("home")
        await pilot.pause()
        assert tab.picked.repeat == 1 and tab.picked.words().endswith(
            "9 ms (median 11), the fastest"
        )
        # from the runs table too: its own left / right / home / end give way here
        app.query_one(RunsTable).focus()
        await pilot.pause()
        await pilot.press("end")
        await pilot.pause()
        assert tab.picked.repeat == 2
        await pilot.press("l")  # back to live: no repeat on screen
        await pilot.pause()
        assert tab.picked is None and heard[-1] is None and "SNAPSHOT" not in app.activity.mode


async def test_in_a_live_session_the_replay_keys_stay_with_the_widgets(tmp_path):
    app = fixed_app(folder=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        config = app.session.config
        for key in ("right", "left"):
            await pilot.press(key)
        await pilot.pause()
        assert app.session.config == config and app.profile.picked is None
        await pilot.press("end")  # the layer list's own key: its last layer
        await pilot.pause()
        assert app.session.config.layer == "network" and app.profile.picked is None
