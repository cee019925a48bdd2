"""The profile tab's conditions line and the runs table's mark, in the app."""

from __future__ import annotations

from dataclasses import replace

import pytest
from rich.text import Text
from test_dashboard import SIZE, make_app, until

from partui.profiles.store.snapshot import Snapshot, save
from partui.profiles.system.conditions import Conditions
from partui.tui.dashboard.widgets.runs_table import RunsTable

pytestmark = pytest.mark.ui


def caption(table: RunsTable) -> str:
    return Text.from_markup(table.border_subtitle or "").plain.strip()


def row_cells(table: RunsTable, i: int) -> list[str]:
    return [str(getattr(c, "plain", c)) for c in table.get_row_at(i)]


async def test_the_line_follows_the_run_and_a_crowded_run_is_marked(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(RunsTable)
        assert caption(table).startswith("conditions: ")  # the machine now, before any run
        assert caption(table).endswith("(now, before any run)")
        await pilot.press("r")
        await until(app, lambda: app.session.runs)
        run = app.session.runs[-1]
        assert isinstance(run.conditions, Conditions)
        assert caption(table) == "conditions: " + run.conditions.line(False)
        # a saved run that other programs crowded, its governor's name hostile
        loud = Conditions(["\x1b]0;owned\x07"], others_cpu=120.0)
        path = save(Snapshot.from_results([replace(run, conditions=loud)]), tmp_path / "s.json")
        app.load_snapshot(path)
        await pilot.pause()
        line = caption(table)
        assert "other programs used 1.2 core during the run" in line
        assert "\x1b" not in line and "\\x1b]0;owned\\x07" in line
        headers = [c.label.plain for c in table.columns.values()]
        assert row_cells(table, 0)[headers.index("ok")] == "ok busy"
