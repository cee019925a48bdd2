"""`partui bench --quick --json` on a tiny budget: the JSON's shape, and every reported
configuration verified against the reference. Speed is not checked here."""

import json
import subprocess
import sys

from partui.profiles.store.snapshot import load


def test_bench_quick_json(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "partui.tui.cli.main",
            "bench",
            "--quick",
            "--json",
            "--batch",
            "8",
            "--layers",
            "conv3,pool3,network",
            "--workers",
            "1,2",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "[3/3] network" in proc.stderr  # progress on stderr
    data = json.loads(proc.stdout)
    snap = load(out)  # a valid snapshot: the chosen runs and the summary
    assert snap.schema_version == 2 and snap.bench is not None
    assert snap.bench.to_dict() == data and snap.bench.network[0].layer == "network"
    assert {(r.config.layer, r.config.workers) for r in snap.runs} >= {("conv3", 1)}
    assert all(r.ok for r in snap.runs)
    assert set(data["gemm_peak_gflops"]) == {"1", "2"}
    assert all(v > 0 for v in data["gemm_peak_gflops"].values())
    assert [(r["layer"], r["workers"]) for r in data["layers"]] == [
        ("conv3", 1),
        ("conv3", 2),
        ("pool3", 1),
        ("pool3", 2),
    ]
    assert [r["workers"] for r in data["network"]] == [1, 2]
    for row in data["layers"] + data["network"]:
        for key in ("workers", "best_strategy", "executor", "median_ms"):
            assert key in row
        assert row["verified"] is True and row["max_abs_error"] <= row["tolerance"]
        assert row["median_ms"] > 0 and row["min_ms"] <= row["median_ms"] <= row["max_ms"]
        # a single task may win the 2-worker slot; then it says so
        if row["workers"] > 1 and row["uses_workers"] == 1:
            assert row["single_task"]
    for row in data["layers"]:
        assert "gflops" in row and row["gflops"] > 0
    assert data["failures"] == []
    names = [t["target"] for t in data["targets"]]
    assert any("network" in n for n in names) and any("slower" in n for n in names)
    # the fixed cost of one repeat on threads, per worker count, with its spread
    assert set(data["overhead_us"]) == {"1", "2"}
    for w, o in data["overhead"].items():
        assert o["repeats"] == 100 and 0 < o["min_us"] <= o["median_us"] <= o["max_us"]
        assert data["overhead_us"][w] == o["median_us"]
    assert any("fixed cost of a repeat of empty tasks, 2 workers" in n for n in names)
    # a split chosen on threads or processes says where its repeat went
    for row in data["layers"] + data["network"]:
        for choice in (row, row.get("best_parallel") or {}):
            if choice.get("uses_workers", 1) > 1 and choice["executor"] != "blas":
                assert choice["work_ms"] > 0 and choice["imbalance"] >= 1.0, choice
                assert choice["fixed_us"] is not None
    # the pool kept as a contrast is never a candidate: bench picks the parked threads
    assert all(r["executor"] != "threads-dynamic" for r in data["layers"] + data["network"])


def test_bench_rejects_bad_input():
    proc = subprocess.run(
        [sys.executable, "-m", "partui.tui.cli.main", "bench", "--layers", "nope"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "unknown layer" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "partui.tui.cli.main", "bench", "--workers", "0"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "--workers" in proc.stderr


def test_the_report_says_where_a_splits_repeat_goes():
    """wall = (work / workers) x imbalance + fixed: the three figures of the best split, the
    work against the best 1-worker time; a summary keeps them, an older one has none."""
    from partui.profiles.records.bench_result import BenchResult, BenchRow
    from partui.tui.cli.commands.bench import report

    one = BenchRow("conv2", "none", "inline", 1, 6.0, 5.9, 6.2, 30, 48.0, 1, True, 1e-6, 1e-4)
    two = BenchRow("conv2", "batch", "threads", 2, 3.4, 3.3, 3.6, 30, 85.0, 2, True, 1e-6, 1e-4,
                   work_ms=6.3, imbalance=1.04, fixed_us=120.0, workers=2)  # fmt: skip
    peak = {"1": {"size": 512, "gflops": 70.0, "best_gflops": 72.0, "median_ms": 3.8}}
    settings = {"screen_repeats": 7, "rounds": 5, "round_repeats": 10}
    result = BenchResult("vectorized", 64, settings, peak, layers=[one, two])
    result.load_average = {"before": [0.5], "after": [0.6]}
    lines = report(result).splitlines()
    at = lines.index(
        "where a split's repeat goes: wall = (work / workers) x imbalance + fixed cost"
    )
    assert lines[at + 3].split() == ["conv2", "2", "batch/threads", "3.40", "1.05x", "1.04", "120"]
    assert BenchResult.from_dict(result.to_dict()).layers[1].work_ms == 6.3
    older = result.to_dict()
    for key in ("work_ms", "imbalance", "fixed_us"):
        older["layers"][1].pop(key)
    assert BenchResult.from_dict(older).layers[1].fixed_us is None
    assert "where a split's repeat goes" not in report(BenchResult.from_dict(older))


def test_the_report_explains_others_and_never_calls_one_task_a_split():
    from partui.profiles.records.bench_result import BenchChoice, BenchResult, BenchRow
    from partui.tui.cli.commands.bench import report

    one = BenchRow("conv3", "none", "inline", 1, 2.0, 1.9, 2.2, 30, 40.0, 1, True, 1e-6, 1e-4)
    blas = BenchChoice("conv3", "none", "blas", 2, 2.4, 2.3, 2.6, 30, 33.0, 1, True, 1e-6, 1e-4)
    two = BenchRow("conv3", "none", "inline", 1, 2.0, 1.9, 2.2, 30, 40.0, 1, True, 1e-6, 1e-4,
                   workers=2, single_task=True, best_parallel=blas)  # fmt: skip
    peak = {"1": {"size": 512, "gflops": 70.0, "best_gflops": 72.0, "median_ms": 3.8}}
    settings = {"screen_repeats": 7, "rounds": 5, "round_repeats": 10}
    result = BenchResult("vectorized", 64, settings, peak, layers=[one, two])
    result.load_average = {"before": [0.5], "after": [0.6]}
    text = report(result)
    assert "best split none" not in text
    assert "single task fastest (best on 2 workers: none/blas, one task on BLAS's threads" in text
    assert "others: CPU cores other programs used while this layer was measured" in text
    two.best_parallel = BenchChoice(
        "conv3", "channel", "threads", 2, 2.5, 2.4, 2.7, 30, 31.0, 2, True, 1e-6, 1e-4
    )
    assert "(best split channel/threads 2.50 ms)" in report(result)


def test_bench_rows_say_faster_only_where_their_repeats_support_it():
    """A 2-worker row against the best 1-worker row: the verdict and interval from their
    repeats (kept through the summary's JSON), 'too few repeats' from a few; the slower
    target counts a row only where its test says slower, not where a median is higher."""
    from partui.profiles.bench.targets import targets
    from partui.profiles.records.bench_result import BenchResult, BenchRow
    from partui.profiles.records.significance import contrast
    from partui.tui.cli.commands.bench import report

    one_ms = [6.0, 6.1, 5.9, 6.2, 6.0, 6.05]
    one = BenchRow("conv2", "none", "inline", 1, 6.0, 5.9, 6.2, 6, 48.0, 1, True, 1e-6, 1e-4)
    two = BenchRow("conv2", "batch", "threads", 2, 3.4, 3.3, 3.6, 6, 85.0, 2, True, 1e-6, 1e-4,
                   workers=2)  # fmt: skip
    two.vs_1_worker = contrast(one_ms, [3.4, 3.3, 3.6, 3.45, 3.35, 3.4]).to_dict()
    same = BenchRow("conv3", "none", "inline", 1, 2.0, 1.9, 2.2, 6, 40.0, 1, True, 1e-6, 1e-4)
    higher = BenchRow("conv3", "batch", "threads", 2, 2.05, 1.9, 2.3, 3, 39.0, 2, True, 1e-6,
                      1e-4, workers=2)  # fmt: skip
    higher.vs_1_worker = contrast([2.0, 1.9, 2.2, 2.0, 2.1], [2.05, 1.9, 2.3]).to_dict()
    peak = {"1": {"size": 512, "gflops": 70.0, "best_gflops": 72.0, "median_ms": 3.8}}
    settings = {"screen_repeats": 7, "rounds": 5, "round_repeats": 10, "noise_floor": 1.1}
    result = BenchResult("vectorized", 64, settings, peak, layers=[one, two, same, higher])
    result.load_average = {"before": [0.5], "after": [0.6]}
    result.conditions = {"quiet": True, "reasons": []}  # a target is met only on a quiet run
    back = BenchResult.from_dict(result.to_dict())
    assert back.layers[1].vs_1_worker == two.vs_1_worker
    text = report(back)
    assert "1.77x faster [1.71-1.82]" in text and "too few repeats (5 and 3, need 5)" in text
    (slower,) = [t for t in targets(back) if "slower" in t["target"]]
    assert slower["met"]  # conv3's higher median with 3 repeats is no evidence
    higher.vs_1_worker = contrast([2.0, 1.9, 2.2, 2.0, 2.1], [2.9, 3.0, 3.1, 2.95, 3.05]).to_dict()
    (slower,) = [t for t in targets(result) if "slower" in t["target"]]
    assert not slower["met"] and "conv3" in slower["figure"] and "x slower [" in slower["figure"]
