"""SVG snapshots of the dashboard's main screens (pytest-textual-snapshot).

The machine is fixed and the live loop is off, so the pictures depend only on the code.
Update them after an intended change with `pytest --snapshot-update`.
"""
from __future__ import annotations

from pathlib import Path

from partui.profiles.engine import RunConfig
from partui.profiles.stream import EngineThread
from partui.tui.app import PartuiApp

MACHINE = {
    "cpu_model": "Test CPU @ 2.00GHz", "logical_cores": 2, "physical_cores": 2,
    "caches": [{"level": 1, "type": "Data", "size": 48 * 1024, "line": 64},
               {"level": 2, "type": "Unified", "size": 2 * 1024 ** 2, "line": 64},
               {"level": 3, "type": "Unified", "size": 32 * 1024 ** 2, "line": 64}],
    "blas": [{"internal_api": "openblas", "version": "0.3", "num_threads": 2}],
}


FOLDER = Path("/nonexistent/partui-snapshots")  # shown on screen: the same on every run


def app(tmp_path, config=None) -> PartuiApp:
    return PartuiApp(snapshot_dir=FOLDER, config=config or RunConfig("conv2", workers=2),
                     engine_factory=EngineThread, live_loop=False, machine=MACHINE)


def test_main_screen(snap_compare, tmp_path):
    assert snap_compare(app(tmp_path), terminal_size=(120, 40))


def test_main_screen_small_terminal(snap_compare, tmp_path):
    assert snap_compare(app(tmp_path), terminal_size=(80, 24))


def test_not_applicable_combination(snap_compare, tmp_path):
    assert snap_compare(app(tmp_path, RunConfig("linear1", "spatial", workers=2)),
                        terminal_size=(120, 40))


def test_help_screen(snap_compare, tmp_path):
    assert snap_compare(app(tmp_path), terminal_size=(120, 40), press=["question_mark"])


def test_memory_lab_tab(snap_compare, tmp_path):
    assert snap_compare(app(tmp_path), terminal_size=(120, 40), press=["m"])


def test_snapshot_browser_empty(snap_compare, tmp_path):
    assert snap_compare(app(tmp_path), terminal_size=(120, 40), press=["o"])
