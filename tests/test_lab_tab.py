"""The lab tab: grouped experiment list, a CPU-core experiment live, its result saved."""

from __future__ import annotations

import json

from test_dashboard import SIZE, make_app, until


async def test_lab_tab_lists_groups_and_runs_ilp_live(tmp_path):
    from textual.widgets import TabbedContent

    from partui.tui.dashboard.tabs.lab import MemLabTab

    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("m")
        tabs = app.query_one(TabbedContent)
        assert str(tabs.get_tab("memlab").label) == "lab"
        tab = app.query_one(MemLabTab)
        tab.quick = True
        options = app.focused.options
        headings = [str(o.prompt) for o in options if o.disabled]
        assert headings == ["CPU CORE", "MEMORY", "THREADS"]
        ids = [o.id for o in options]
        assert ids.index("ilp") < ids.index("stride") < ids.index("false-sharing")
        app.focused.highlighted = ids.index("ilp")
        await pilot.press("enter")
        await until(app, lambda: tab.points, timeout=30)
        await until(app, lambda: tab.result is not None, timeout=60)
        assert [p.x for p in tab.points] == [1, 2, 4, 8, 16]
        assert "speedup_4_over_1" in tab.result.summary
        assert str(app.query_one("#memlab-text").render()) == tab.result.explanation
        await pilot.press("s")
        data = json.loads(next(tmp_path.glob("*.json")).read_text())
        assert data["memlab"][0]["experiment"] == "ilp"
