"""Nothing cut mid-word: titles, chart placeholders and the key bar, checked on captured screens.

The screens are the Pilot's (the same picture as a screenshot), at the three sizes, empty
and after runs, and the memory lab with a result. tests/test_e2e_tmux.py runs the same
check on the real command in tmux.
"""

from __future__ import annotations

import pytest
import screen_check as check
from screen_check import ESSENTIAL, placeholders, problems
from screen_fixtures import add_fixed_runs, fixed_app, screen_text, show_memlab_result

from partui.tui.dashboard.keys import profile_keys

SIZES = [(80, 24), (120, 40), (200, 60)]


def known_titles(app) -> list[str]:
    return check.known_titles() + [
        w.border_title for w in app.query("*") if isinstance(w.border_title, str)
    ]


def test_the_key_bar_lists_the_essential_keys_first():
    essential, _ = profile_keys(viewing=False, compact=False)
    assert [k.key for k in essential] == ESSENTIAL


@pytest.mark.parametrize("runs", [False, True], ids=["empty", "after-runs"])
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_nothing_is_cut_mid_word(size, runs):
    app = fixed_app()
    async with app.run_test(size=size) as pilot:
        if runs:
            add_fixed_runs(app)
        app.redraw(force=True)  # the placeholders too (the live loop is off)
        await pilot.pause()
        screen = screen_text(app)
        assert not problems(screen, known_titles(app), placeholders()), screen
        assert "network" in screen and "logsoftmax" in screen  # every layer in view


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_memory_lab_axes_read_in_powers_of_two(size):
    app = fixed_app()
    async with app.run_test(size=size) as pilot:
        await pilot.press("m")
        show_memlab_result(app)
        await pilot.pause()
        screen = screen_text(app)
        assert not problems(screen, known_titles(app), [], tab="memlab"), screen
        assert "KiB" in screen and "MiB" in screen and "131072" not in screen
        for label in ("L1 48 KiB", "L2 2 MiB", "L3 32 MiB"):  # every marker, whole
            assert label in screen, screen
        assert "● row order" in screen and "● column order" in screen  # in the border
        # a min-max bar on the points
        assert "│" in "".join(line[45:-3] for line in screen.splitlines()[5:-8])


async def test_below_80x24_says_what_is_needed():
    app = fixed_app()
    async with app.run_test(size=(70, 20)) as pilot:
        await pilot.pause()
        assert "terminal too small: 80x24 needed, this one is 70x20" in screen_text(app)
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        screen = screen_text(app)
        assert "too small" not in screen and "settings" in screen


async def test_runs_table_gives_the_speedup_over_one_worker_with_its_interval():
    """After a 1-worker and a 2-worker run of one configuration (5 repeats each, 6.4 and
    3.6 ms medians): a wide table shows the 2-worker row's speedup with its bootstrap
    interval; the 1-worker row has nothing to compare with; a narrow one gives the column
    up first. An empty table has no such column."""
    from partui.profiles.records.significance import contrast
    from partui.tui.dashboard.widgets.runs_table import RunsTable

    app = fixed_app()
    async with app.run_test(size=(200, 60)) as pilot:
        table = app.query_one(RunsTable)
        assert "vs 1w" not in [str(c.label) for c in table.columns.values()]
        add_fixed_runs(app)
        await pilot.pause()
        headers = [str(c.label) for c in table.columns.values()]
        at = headers.index("vs 1w")
        one, two = (table.get_row_at(i) for i in range(2))
        times = (0.97, 0.99, 1.0, 1.02, 1.06)  # fixed_result's repeats over its median
        expected = contrast([6.4 * f for f in times], [3.6 * f for f in times])
        assert expected.significant and str(two[at]) == expected.short()
        assert str(two[at]).startswith("1.78x [") and str(one[at]) == ""
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        assert "vs 1w" not in [str(c.label) for c in table.columns.values()]
