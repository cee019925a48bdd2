"""Snapshots: round trip, atomic writes, validation of bad files."""

import json
import math
from dataclasses import replace

import pytest

from partui.profiles.records.bench_result import BenchResult, BenchRow
from partui.profiles.records.config import RunConfig
from partui.profiles.records.results import RunResult
from partui.profiles.run.engine import Engine
from partui.profiles.store import snapshot as snap
from partui.profiles.store.baselines import Baseline
from partui.profiles.store.snapshot import Snapshot, load, save
from partui.profiles.store.snapshot_validation import SnapshotError


@pytest.fixture(scope="module")
def result():
    with Engine() as engine:
        # long enough (~0.2 s) for CPU samples even once the kernels are compiled and warm
        return engine.run(RunConfig("conv2", workers=2, batch=8, repeats=300))


def test_round_trip_keeps_results_spans_and_samples(tmp_path, result):
    s = Snapshot.from_results(
        [result],
        note="first try",
        memlab=[{"experiment": "stride"}],
        baseline={"conv2/vectorized/b8": Baseline(1.0, result.config, "this sweep")},
    )
    path = save(s, tmp_path / "a.json")
    back = load(path)
    assert back.note == "first try" and back.memlab == [{"experiment": "stride"}]
    assert back.machine == s.machine
    assert back.partui_version == snap.partui_version() != "unknown"
    (r,) = back.results()
    assert isinstance(r, RunResult)
    assert r.spans == result.spans and r.times_ms == result.times_ms
    # a per-core figure the sampler could not read is NaN, and NaN != NaN: compare as written
    assert [c.to_dict() for c in r.cpu_samples] == [c.to_dict() for c in result.cpu_samples]
    assert r.cpu_samples
    assert r.config == result.config and r.median_ms == result.median_ms
    assert [x if math.isfinite(x) else None for x in r.on_cpu_ratio] == [
        x if math.isfinite(x) else None for x in result.on_cpu_ratio
    ]
    assert json.loads(path.read_text())["format"] == "partui-snapshot"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temporary file left


def test_nan_and_inf_are_written_as_null(tmp_path, result):
    r = replace(result, on_cpu_ratio=[float("nan"), 0.5], max_abs_error=float("inf"))
    path = save(Snapshot(runs=[r]), tmp_path / "b.json")
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    (r,) = load(path).results()
    assert math.isnan(r.on_cpu_ratio[0]) and r.on_cpu_ratio[1] == 0.5
    assert r.max_abs_error == float("inf")


def test_failed_write_leaves_the_old_file(tmp_path, result, monkeypatch):
    path = save(Snapshot.from_results([result], note="old"), tmp_path / "c.json")
    before = path.read_text()

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    from partui.profiles.files import safe_files

    monkeypatch.setattr(safe_files.os, "rename", boom)
    with pytest.raises(OSError):
        save(Snapshot.from_results([result], note="new"), path, overwrite=True)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]


def good(result) -> dict:
    return json.loads(json.dumps(snap.json_safe(Snapshot.from_results([result]).to_dict())))


def write(tmp_path, data) -> str:
    p = tmp_path / "x.json"
    p.write_text(data if isinstance(data, str) else json.dumps(data))
    return p


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: json.dumps(d)[:200], "truncated"),
        (lambda d: "hello, world", "not valid JSON"),
        (lambda d: {"traceEvents": []}, "not a partui snapshot"),
        (lambda d: [1, 2], "not a partui snapshot"),
        (lambda d: {**d, "schema_version": 99}, "schema version 99 is newer"),
        (lambda d: {**d, "schema_version": "1"}, "schema_version: expected an integer"),
        (lambda d: {k: v for k, v in d.items() if k != "runs"}, "missing field 'runs'"),
        (
            lambda d: {**d, "runs": [{**d["runs"][0], "median_ms": "fast"}]},
            "runs[0].median_ms: expected a number",
        ),
        (
            lambda d: {**d, "runs": [{**d["runs"][0], "spans": [{"worker": 0}]}]},
            "runs[0].spans[0]: missing field 'tid'",
        ),
        (
            lambda d: {
                **d,
                "runs": [{**d["runs"][0], "config": {**d["runs"][0]["config"], "workers": True}}],
            },
            "runs[0].config.workers: expected an integer",
        ),
    ],
)
def test_bad_files_are_refused_with_one_line(tmp_path, result, mutate, message):
    path = write(tmp_path, mutate(good(result)))
    with pytest.raises(SnapshotError) as info:
        load(path)
    text = str(info.value)
    assert message in text and "\n" not in text and str(path) in text


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(SnapshotError, match="no such file"):
        load(tmp_path / "none.json")
    with pytest.raises(SnapshotError, match="folder"):
        load(tmp_path)


def test_list_snapshots_and_default_dir(tmp_path, result, monkeypatch):
    save(
        Snapshot.from_results([result], note="n", created="2026-01-01T00:00:00+00:00"),
        tmp_path / "old.json",
    )
    save(
        Snapshot.from_results([result, result], created="2026-02-01T00:00:00+00:00"),
        tmp_path / "new.json",
    )
    (tmp_path / "bad.json").write_text("{")
    monkeypatch.setenv("PARTUI_SNAPSHOT_DIR", str(tmp_path))
    assert snap.default_snapshot_dir() == tmp_path
    listed = snap.list_snapshots()
    assert [s.path.name for s in listed] == ["new.json", "old.json", "bad.json"]
    assert (
        listed[0].runs == 2
        and listed[0].configurations[0] == "conv2 batch/vectorized/threads w=2 b=8"
    )
    assert listed[0].logical_cores >= 1 and listed[1].note == "n"
    assert listed[2].error and "truncated" in listed[2].error
    monkeypatch.delenv("PARTUI_SNAPSHOT_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert snap.default_snapshot_dir() == tmp_path / "xdg" / "partui" / "snapshots"


def test_schema_1_files_still_open_their_bench_summary_moves(tmp_path, saved_snapshot):
    """Schema 1 kept `partui bench`'s summary in baseline["bench"]; schema 2 has `bench`."""
    d = json.loads(saved_snapshot.read_text())
    assert d["schema_version"] == 2 and "bench" not in d
    row = BenchRow("conv2", "batch", "threads", 2, 1.0, 0.9, 1.2, 5, 80.0, 2, True, 1e-6, 1e-4)
    summary = BenchResult("vectorized", 4, {}, {"1": {"gflops": 100.0}}, layers=[row]).to_dict()
    old = {**d, "schema_version": 1, "baseline": {**d["baseline"], "bench": summary}}
    (tmp_path / "v1.json").write_text(json.dumps(old))
    back = load(tmp_path / "v1.json")
    assert back.schema_version == 1 and back.bench == BenchResult.from_dict(summary)
    assert back.bench.layers == [row] and back.bench.gemm_peak_gflops == {"1": 100.0}
    assert set(back.baseline) == set(d["baseline"]) and "bench" not in back.baseline
    assert all(isinstance(b, Baseline) and b.config.workers == 1 for b in back.baseline.values())
    assert [r.config for r in back.runs] == [r.config for r in load(saved_snapshot).runs]
    # written again, it is a schema 2 file with the summary in its own field
    again = json.loads(save(back, tmp_path / "v2.json").read_text())
    assert again["schema_version"] == 2 and again["bench"] == summary
    assert "bench" not in again["baseline"]
    assert load(tmp_path / "v2.json").bench == back.bench


def test_a_bench_field_in_a_schema_1_file_or_a_bench_baseline_in_2_is_refused(
    tmp_path, saved_snapshot
):
    d = json.loads(saved_snapshot.read_text())
    (tmp_path / "a.json").write_text(json.dumps({**d, "schema_version": 1, "bench": {}}))
    with pytest.raises(SnapshotError, match="snapshot.bench"):
        load(tmp_path / "a.json")
    (tmp_path / "b.json").write_text(json.dumps({**d, "baseline": {"bench": {}}}))
    with pytest.raises(SnapshotError, match="baseline"):
        load(tmp_path / "b.json")
