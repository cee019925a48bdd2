import re
import signal

import pytest

# Markers (registered in pyproject.toml), applied here by file and by parameter so that a new
# test in these files is marked without a decorator. Single slow tests elsewhere carry
# @pytest.mark.slow themselves. The quick set: -m "not slow and not tmux and not dask".
FILE_MARKS = {
    "test_e2e_tmux.py": ("tmux", "processes", "slow"),
    "test_dask.py": ("dask", "processes", "slow"),
    "test_interrupt.py": ("processes", "slow"),
    "test_process_lifecycle.py": ("processes", "slow"),
    "test_entry_points.py": ("processes",),
    "test_no_leftovers.py": ("processes",),
}
# a parameter naming one of these (test_x[conv2-batch-vectorized-processes]) marks the test
PARAM_MARKS = {
    "dask": ("dask", "processes"),
    "processes": ("processes",),
    "process": ("processes",),
}
# fixtures that start processes: the CLI in a subprocess, an engine process
FIXTURE_MARKS = {"engine_process": ("processes",)}


def pytest_configure(config):
    """Ctrl+C and hang-ups as a terminal gives them. A shell starts a background job (`cmd
    &`) with SIGINT ignored, nohup ignores SIGHUP, and an ignored signal stays ignored in
    every child: partui would never see the tests' Ctrl+C or SIGHUP (nor this process
    _thread.interrupt_main). A handler here is reset to the default in each child at exec;
    this process still shrugs off a hang-up, as nohup asked."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
        signal.signal(signal.SIGHUP, lambda signum, frame: None)


def pytest_collection_modifyitems(config, items):
    for item in items:
        marks = set(FILE_MARKS.get(item.path.name, ()))
        params = re.search(r"\[(.*)\]$", item.name)
        for value in re.split(r"[-,]", params.group(1)) if params else ():
            marks.update(PARAM_MARKS.get(value, ()))
        for name in getattr(item, "fixturenames", ()):
            marks.update(FIXTURE_MARKS.get(name, ()))
        for mark in sorted(marks):
            item.add_marker(mark)


@pytest.fixture(autouse=True)
def _private_data_dirs(tmp_path_factory, monkeypatch):
    """Tests never read or write the user's snapshots or baseline book."""
    data = tmp_path_factory.mktemp("partui-data")
    monkeypatch.setenv("PARTUI_SNAPSHOT_DIR", str(data / "snapshots"))
    monkeypatch.setenv("PARTUI_BASELINE_BOOK", str(data / "baselines.json"))


@pytest.fixture(scope="session")
def saved_snapshot(tmp_path_factory):
    """A real snapshot file (two small runs with spans, CPU samples and a baseline); read only."""
    from partui.profiles.analysis import analyze
    from partui.profiles.engine import Engine, RunConfig
    from partui.profiles.snapshot import Snapshot, save

    with Engine() as engine:
        results = [
            engine.run(RunConfig("conv2", "batch", "vectorized", "threads", w, 4, 3, 1))
            for w in (1, 2)
        ]
    analysis = analyze(results, {}, "this sweep")
    snap = Snapshot.from_results(
        results,
        note="a real snapshot",
        baseline=dict(analysis.baselines),
    )
    return save(snap, tmp_path_factory.mktemp("snapshot") / "real.json")
