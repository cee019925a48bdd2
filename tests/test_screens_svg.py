"""SVG snapshots of the dashboard's main screens (pytest-textual-snapshot).

The machine is fixed, the live loop is off and the runs are made by hand
(tests/screen_fixtures.py), so the pictures depend only on the code.
Update them after an intended change with `pytest --snapshot-update`, and look at them.
"""

from __future__ import annotations

import pytest
from screen_fixtures import FOLDER, MACHINE, add_fixed_runs, fixed_app  # noqa: F401 (shared)

from partui.profiles.records.config import RunConfig

SIZES = [(80, 24), (120, 40), (200, 60)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_main_screen_empty(snap_compare, size):
    assert snap_compare(fixed_app(), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_main_screen_after_runs(snap_compare, size):
    async def runs(pilot):
        add_fixed_runs(pilot.app)
        await pilot.pause()

    assert snap_compare(fixed_app(), terminal_size=size, run_before=runs)


def test_terminal_too_small(snap_compare):
    assert snap_compare(fixed_app(), terminal_size=(70, 20))


def test_not_applicable_combination(snap_compare):
    assert snap_compare(
        fixed_app(RunConfig("linear1", strategy="spatial", workers=2)), terminal_size=(120, 40)
    )


def test_help_screen(snap_compare):
    assert snap_compare(fixed_app(), terminal_size=(120, 40), press=["question_mark"])


def test_memory_lab_tab(snap_compare):
    assert snap_compare(fixed_app(), terminal_size=(120, 40), press=["m"])


def test_snapshot_browser_empty(snap_compare):
    assert snap_compare(fixed_app(), terminal_size=(120, 40), press=["o"])


def test_memory_lab_with_a_result(snap_compare):
    from screen_fixtures import show_memlab_result

    async def result(pilot):
        await pilot.press("m")
        show_memlab_result(pilot.app)
        await pilot.pause()

    assert snap_compare(fixed_app(), terminal_size=(120, 40), run_before=result)
