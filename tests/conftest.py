import pytest


@pytest.fixture(autouse=True)
def _private_data_dirs(tmp_path_factory, monkeypatch):
    """Tests never read or write the user's snapshots or baseline book."""
    data = tmp_path_factory.mktemp("partui-data")
    monkeypatch.setenv("PARTUI_SNAPSHOT_DIR", str(data / "snapshots"))
    monkeypatch.setenv("PARTUI_BASELINE_BOOK", str(data / "baselines.json"))
