import pytest


@pytest.fixture(autouse=True)
def _private_data_dirs(tmp_path_factory, monkeypatch):
    """Tests never read or write the user's snapshots or baseline book."""
    data = tmp_path_factory.mktemp("partui-data")
    monkeypatch.setenv("PARTUI_SNAPSHOT_DIR", str(data / "snapshots"))
    monkeypatch.setenv("PARTUI_BASELINE_BOOK", str(data / "baselines.json"))


@pytest.fixture(scope="session")
def saved_snapshot(tmp_path_factory):
    """A real snapshot file (two small runs with spans, CPU samples and a baseline); read only."""
    from partui.profiles.records.config import RunConfig
    from partui.profiles.run.engine import Engine
    from partui.profiles.store.analysis import analyze
    from partui.profiles.store.snapshot import Snapshot, save

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
