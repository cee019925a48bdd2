"""The memory-lab runner and `partui demo`: results, JSON, cancellation, memory, lazy numba."""

import json
import signal
import subprocess
import sys
import threading
import time

import pytest
from waiting import budget, cpu_seconds, wait_until

from partui.profiles.lab import runner as memlab
from partui.profiles.lab.measure import ExperimentResult, MemPoint, compare
from partui.profiles.system.memory_limits import Room

TINY_FS = {"repeats": 2, "increments": {"plain": 20_000, "atomic": 20_000}, "chunk": 5_000}


def point(samples, series="s"):
    return MemPoint.of("x", series, 1, "x", "y", samples)


def test_verdict_only_where_spreads_do_not_overlap():
    slow, fast = point([4.0, 4.5, 5.0]), point([1.0, 1.1, 1.2])
    c = compare(slow, fast)
    assert c.separated and c.text == "4.1x slower" and c.ratio == pytest.approx(4.5 / 1.1)
    assert compare(fast, slow).text == "4.1x faster"
    assert compare(slow, fast, higher_is_better=True).text == "4.1x faster"
    overlap = compare(point([1.0, 2.0, 3.0]), point([2.5, 2.6, 2.7]))
    assert not overlap.separated and "no clear difference" in overlap.text


def test_point_statistics():
    p = point([3.0, 1.0, 2.0, 10.0])
    assert (p.median, p.min, p.max) == (2.5, 1.0, 10.0)


def test_disturbed_samples_are_retaken_and_counted():
    from partui.profiles.lab.measure import RETAKES, Lab

    lab = Lab("x", None, threading.Event(), True, {}, {})
    resets = []
    # a sleeping thread is off its core the whole time: cpu_share near 0
    s = lab.sample([[lambda: time.sleep(0.01)]], min_share=0.9, reset=lambda: resets.append(1))
    assert s.cpu_share < 0.5 and s.wall_ns >= 10_000_000
    assert lab.counts() == {"samples_retaken": RETAKES, "samples_disturbed": 1}
    assert len(resets) == RETAKES
    lab.sample([[lambda: time.sleep(0.01)]])  # no min_share: taken as it is
    assert lab.counts()["samples_retaken"] == RETAKES


def test_false_sharing_result_and_snapshot_round_trip():
    emitted = []
    r = memlab.run_experiment("false-sharing", emit=emitted.append, params=TINY_FS)
    assert not r.cancelled and emitted == r.points
    assert {p.series for p in r.points} == {
        "plain, adjacent",
        "plain, padded",
        "atomic, adjacent",
        "atomic, padded",
    }
    assert all(len(p.samples) == 2 and p.min <= p.median <= p.max for p in r.points)
    assert r.summary["counts_ok"] is True
    for key in ("atomic_adjacent_over_padded", "plain_adjacent_over_padded"):
        assert r.summary[key] > 0
    assert "Atomic increments" in r.explanation and "Plain increments" in r.explanation
    d = json.loads(json.dumps(r.to_dict()))
    again = ExperimentResult.from_dict(d)
    assert again.points == r.points and again.explanation == r.explanation
    with pytest.raises(ValueError, match="kind"):
        ExperimentResult.from_dict({"kind": "other"})
    broken = dict(d)
    del broken["points"]
    with pytest.raises(ValueError, match="points"):
        ExperimentResult.from_dict(broken)


def test_small_runs_of_the_other_experiments():
    runs = {
        "mountain": {"sizes": [8192, 65536], "repeats": 2, "target_s": 0.002},
        "traversal": {"sides": [64], "conv_batches": [1], "repeats": 2, "target_s": 0.002},
        "partition": {"sizes": [16384], "repeats": 2, "target_s": 0.002},
        "stride": {"array_bytes": 1 << 20, "strides": [1, 16, 32], "repeats": 2},
    }
    for name, params in runs.items():
        r = memlab.run_experiment(name, params=params)
        assert r.points and not r.cancelled and r.explanation, name
        assert all(p.median > 0 for p in r.points), name
    # the checks each experiment makes of its own arithmetic
    trav = memlab.run_experiment("traversal", params=runs["traversal"]).summary
    assert all(d["sums_equal"] for d in trav["matrix"].values())
    part = memlab.run_experiment("partition", params=runs["partition"]).summary
    assert all(d["updates_ok"] for d in part["sizes"].values())


def assert_cancels_promptly(name: str, params: dict) -> None:
    """A long run of `name` stops within a second of its cancel event being set (cancelled
    once it has measured its first point: under way, past any compile)."""
    cancel = threading.Event()
    box: dict = {}
    points: list = []
    t = threading.Thread(
        target=lambda: box.update(
            r=memlab.run_experiment(name, points.append, cancel=cancel, params=params)
        )
    )
    t.start()
    wait_until(lambda: points or not t.is_alive(), 60, message="no point measured")
    assert t.is_alive(), "the run ended before its cancel: make it longer"
    t0 = time.perf_counter()
    cancel.set()
    t.join(budget(5))
    limit = budget(1.0)
    assert not t.is_alive() and time.perf_counter() - t0 < limit, limit
    assert box["r"].cancelled and "stopped" in box["r"].explanation


def test_cancel_stops_a_run_within_a_second():
    # a size's six points come together, after 6 x 10 samples of 20 ms: the first about a
    # second in, the last (of nine sizes) about ten seconds in
    sizes = [16384 << k for k in range(9)]
    assert_cancels_promptly("partition", {"sizes": sizes, "repeats": 10, "target_s": 0.02})


def test_memory_is_checked_before_anything_runs(monkeypatch):
    monkeypatch.setattr(
        memlab, "_memory_room", lambda: Room(100 * 2**20, "available system memory")
    )
    with pytest.raises(memlab.MemoryShort, match=r"stride needs 384 MiB .* only 100 MiB"):
        memlab.run_experiment("stride")
    with pytest.raises(memlab.MemoryShort, match="--quick needs 64 MiB"):
        memlab.check_memory("mountain")
    assert memlab.memory_need("mountain") == 512 * 2**20
    assert all(memlab.memory_need(n) <= memlab.MAX_MEMORY for n in memlab.EXPERIMENTS)


def test_demo_refuses_when_memory_is_short(monkeypatch, capsys):
    from partui.tui.cli import main as cli

    monkeypatch.setattr(
        memlab, "_memory_room", lambda: Room(100 * 2**20, "available system memory")
    )
    assert cli.main(["demo", "partition"]) == 1
    err = capsys.readouterr().err
    assert "partition needs 384 MiB" in err and "Traceback" not in err


def test_demo_unknown_name_exits_2_naming_the_valid_ones(capsys):
    from partui.tui.cli import main as cli

    assert cli.main(["demo", "nope"]) == 2
    err = capsys.readouterr().err
    assert all(name in err for name in memlab.EXPERIMENTS)


def test_demo_table_and_text(monkeypatch, capsys):
    from partui.tui.cli import main as cli

    real = memlab.run_experiment
    monkeypatch.setattr(
        memlab, "run_experiment", lambda name, **kw: real(name, **{**kw, "params": TINY_FS})
    )
    assert cli.main(["demo", "false-sharing"]) == 0
    out, err = capsys.readouterr()
    assert "atomic, adjacent" in out and "threads" in out and "Plain increments" in out
    assert "atomic, padded" in err  # progress, point by point


def test_demo_json_has_the_ratios_and_raw_samples(monkeypatch, capsys):
    from partui.tui.cli import main as cli

    real = memlab.run_experiment
    seen = {}
    monkeypatch.setattr(
        memlab,
        "run_experiment",
        lambda name, **kw: seen.update(kw) or real(name, **{**kw, "params": TINY_FS}),
    )
    assert cli.main(["demo", "false-sharing", "--json", "--quick"]) == 0
    assert seen["quick"] is True
    d = json.loads(capsys.readouterr().out)
    assert d["kind"] == "partui-memlab" and d["experiment"] == "false-sharing"
    for key in ("atomic_adjacent_over_padded", "plain_adjacent_over_padded"):
        assert isinstance(d["summary"][key], float)
    p = d["points"][0]
    assert set(p) >= {"series", "x", "samples", "median", "min", "max", "cpu_share"}
    assert len(p["samples"]) == 2


def test_ctrl_c_exits_130_promptly():
    proc = subprocess.Popen(
        [sys.executable, "-m", "partui.tui.cli.main", "demo", "false-sharing"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert "Ctrl+C" in proc.stderr.readline()  # the header: the run has started
    at_header = cpu_seconds(proc.pid)
    # the threads at work: half a second of CPU measured since the header
    wait_until(lambda: cpu_seconds(proc.pid) - at_header > 0.5 or proc.poll() is not None, 30)
    assert proc.poll() is None
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(timeout=budget(10))
    elapsed = time.perf_counter() - t0
    err = proc.stderr.read()
    assert rc == 130 and elapsed < budget(1.5), (rc, elapsed, err)
    assert "Traceback" not in err


def test_numba_is_imported_lazily():
    code = (
        "import sys; import partui.tui.cli.main as c; import partui.profiles.lab.runner; "
        "import partui.kernels.lab.counters; c.build_parser(); "
        "print('numba' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def pts(series, values, spread=0.02):
    """Points at x = 1, 2, ... with the given medians and a small spread."""
    return [
        MemPoint.of("x", series, x, "x", "y", [v * (1 - spread), v, v * (1 + spread)])
        for x, v in values
    ]


def test_stride_knee_ignores_multiples_of_two_lines():
    from partui.profiles.lab.experiments import stride

    costs = [
        (1, 0.8),
        (8, 2.7),
        (16, 4.0),
        (24, 4.8),
        (28, 5.0),
        (32, 7.9),
        (40, 5.2),
        (48, 5.3),
        (64, 9.4),
    ]
    s = stride.summarize(pts("s", costs), line=64, array_bytes=1, l3=None)
    assert s["knee_stride"] == 24
    assert s["pair_multiples"]["strides"] == [32, 64]
    assert all(c["separated"] for c in s["pair_multiples"]["over_others"].values())
    assert stride.find_knee(pts("s", [(1, 1.0), (2, 2.0), (4, 4.0)])) == 4


def test_mountain_steps_are_found_where_bandwidth_falls():
    from partui.profiles.lab.experiments import mountain

    gbs = [
        (8192, 140),
        (32768, 140),
        (65536, 48),
        (131072, 47),
        (1 << 20, 47),
        (4 << 20, 27),
        (8 << 20, 27),
    ]
    steps = mountain.find_steps(pts("rmw", gbs))
    assert [(s["from_size"], s["to_size"]) for s in steps] == [(32768, 65536), (1 << 20, 4 << 20)]
    machine = {"l1": 49152, "l2": 2 << 20, "l3": 260 << 20}
    assert [mountain._cache_at(s, machine) for s in steps] == ["L1", "L2"]


def test_false_sharing_text_follows_the_figures():
    from partui.profiles.lab.experiments import false_sharing

    series = list(false_sharing.FS_SERIES)
    summary = {
        "threads": 2,
        "line_bytes": 64,
        "counts_ok": True,
        "ns_per_increment": dict(zip(series, [2.4, 2.3, 28.0, 6.0])),
        "atomic_verdict": {"ratio": 4.7, "separated": True, "text": "4.7x slower"},
        "plain_verdict": {"ratio": 1.04, "separated": False, "text": "no clear difference"},
        "cpu_share": dict.fromkeys(series, 0.98),
    }
    lab = memlab.Lab("false-sharing", None, threading.Event(), False, {}, {})
    text = false_sharing.explain(summary, lab)
    assert "4.7x slower" in text and "store buffer" in text and "cannot tell" not in text
    summary["cpu_share"] = dict.fromkeys(series, 0.5)
    text = false_sharing.explain(summary, lab)
    assert "cannot tell" in text and "store buffer" not in text
