"""SVG snapshot of a saved run replayed: its slowest repeat on the timeline, its point on
the speedup chart, the run's CPU with that repeat marked, and the header's words. The run
is made by hand (replay_fixtures), so the picture depends only on the code. Update after an
intended change with `pytest --snapshot-update`."""

from __future__ import annotations

import pytest
from replay_fixtures import replay_snapshot
from screen_fixtures import fixed_app

from partui.profiles.store.snapshot import save

pytestmark = pytest.mark.ui


def test_replay_of_the_slowest_repeat(snap_compare, tmp_path):
    path = save(replay_snapshot(), tmp_path / "replay.json")

    async def run_before(pilot) -> None:
        pilot.app.load_snapshot(path)
        await pilot.press("end")
        pilot.app.profile.follow_pick()  # the charts' redraw, due once the keys are quiet
        pilot.app.clear_notifications()  # the toast names the temporary folder
        await pilot.pause()

    assert snap_compare(fixed_app(folder=tmp_path), terminal_size=(120, 40), run_before=run_before)
