"""The batching experiment: the network forward through the engine at several batch sizes,
latency and throughput per worker count, saturation, JSON, cancellation."""

import json

import pytest
from test_memlab_runner import assert_cancels_promptly
from waiting import budget, cpu_seconds, wait_until

from partui.profiles.lab import runner as memlab
from partui.profiles.lab.measure import MemPoint

TINY = {
    "batches": [1, 2],
    "rounds": 1,
    "round_repeats": 1,
    "screen_repeats": 1,
    "screen_batch": 2,
    "executors": ["inline", "threads"],
}


def test_batching_points_and_json():
    r = memlab.run_experiment("batching", params=TINY)
    assert not r.cancelled
    s = json.loads(json.dumps(r.to_dict()))["summary"]
    assert s["failures"] == []  # every call verified against the float64 reference
    pts = s["points"]
    assert {(p["batch"], p["workers"]) for p in pts} == {(1, 1), (2, 1), (1, 2), (2, 2)}
    for p in pts:
        assert set(p) >= {"batch", "workers", "ms_per_batch", "images_per_s", "ms_per_image"}
        assert p["ms_per_batch_min"] <= p["ms_per_batch"] <= p["ms_per_batch_max"]
        assert p["ms_per_image"] == pytest.approx(p["ms_per_batch"] / p["batch"])
    assert s["by_workers"]["1"]["executor"] == "inline"
    assert s["by_workers"]["2"]["executor"] == "threads"  # a 2-worker configuration
    assert s["by_workers"]["2"]["strategy"] != "none"
    latency = [q for q in r.points if q.y_label == "ms per batch"]
    throughput = [q for q in r.points if q.y_label == "images per s"]
    assert len(latency) == len(throughput) == 4
    for lat in latency:  # throughput is the same samples seen as images per second
        thr = next(
            q
            for q in throughput
            if q.x == lat.x and q.series.split(":")[0] == lat.series.split(":")[0]
        )
        assert thr.samples == pytest.approx([lat.x * 1000 / t for t in lat.samples])
    assert "LATENCY" in r.explanation and "THROUGHPUT" in r.explanation


def test_saturation_is_the_first_batch_near_the_best():
    from partui.profiles.lab.experiments.batching import saturation

    def pt(x, v):
        return MemPoint.of("b", "t", x, "batch", "images per s", [v * 0.99, v, v * 1.01])

    pts = [pt(1, 100), pt(2, 190), pt(4, 350), pt(8, 480), pt(16, 500), pt(32, 505)]
    assert saturation(pts).x == 8
    assert saturation([pt(1, 100), pt(2, 300)]).x == 2


def test_batching_can_be_cancelled():
    assert_cancels_promptly("batching", {**TINY, "batches": [1, 2, 4, 8], "rounds": 500})


def test_demo_batching_json(monkeypatch, capsys):
    from partui.tui.cli import main as cli

    real = memlab.run_experiment
    monkeypatch.setattr(
        memlab, "run_experiment", lambda name, **kw: real(name, **{**kw, "params": TINY})
    )
    assert cli.main(["demo", "batching", "--json", "--quick"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["experiment"] == "batching" and len(d["summary"]["points"]) == 4


@pytest.mark.processes
def test_ctrl_c_stops_the_engine_and_exits_130():
    import signal
    import subprocess
    import sys

    from partui.kernels.warmup import compile_kernels

    # the network's kernels in the disk cache first: the Ctrl+C is for the screening, not
    # for a first-run compile
    compile_kernels(["network"])
    proc = subprocess.Popen(
        # the full experiment: --quick can finish within two seconds on a quiet machine
        [sys.executable, "-m", "partui.tui.cli.main", "demo", "batching"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert "Ctrl+C" in proc.stderr.readline()
    at_header = cpu_seconds(proc.pid)
    # the engine screening configurations: half a second of CPU measured since the header
    wait_until(lambda: cpu_seconds(proc.pid) - at_header > 0.5 or proc.poll() is not None, 30)
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(timeout=budget(15))
    err = proc.stderr.read()
    assert rc == 130 and "Traceback" not in err, (rc, err)
    assert proc.stdout.read() == ""  # no half result printed


def test_batching_text_follows_the_figures():
    import threading

    from partui.profiles.lab.experiments import batching

    lab = memlab.Lab("batching", None, threading.Event(), False, {"screen_batch": 64}, {})
    pt = {
        "batch": 64,
        "workers": 2,
        "ms_per_batch": 10.0,
        "ms_per_batch_min": 9.0,
        "ms_per_batch_max": 11.0,
        "tasks": 2,
    }
    summary = {
        "by_workers": {
            "1": {
                "strategy": "none",
                "executor": "inline",
                "screened": 1,
                "latency_ms_at_batch_1": 1.0,
                "images_per_s_at_batch_1": 1000,
                "saturates_at_batch": 16,
                "images_per_s_at_saturation": 4000,
                "latency_ms_at_saturation": 4.0,
                "best_images_per_s": 4200,
                "best_batch": 64,
            }
        },
        "points": [pt, {**pt, "batch": 1, "tasks": 1}],
        "failures": [],
        "other_cpu_cores": 0.1,
        "load_average_1min": 1.0,
    }
    text = batching.explain(summary, lab)
    assert "batch 16 (4000 images/s" in text and "4.0x the latency of batch 1 for 4.0x" in text
    assert "At batch 1 the 2-worker configuration made a single task" in text
    assert "quiet enough" in text and "as rough" not in text
    summary["points"][0]["ms_per_batch_max"] = 30.0
    summary["other_cpu_cores"] = 1.5
    text = batching.explain(summary, lab)
    assert "1 of 2 points have a max more than 2x" in text and "pessimistic" in text


def test_batching_words_for_a_cheaper_big_batch_and_one_task_on_blas():
    """A saturation batch faster per call than batch 1 is not a 'cost'; one task on the blas
    executor keeps both cores busy, so no worker 'idled'."""
    import threading

    from partui.profiles.lab.experiments import batching

    lab = memlab.Lab("batching", None, threading.Event(), False, {"screen_batch": 64}, {})
    one = {
        "strategy": "none",
        "executor": "inline",
        "screened": 1,
        "latency_ms_at_batch_1": 10.0,
        "images_per_s_at_batch_1": 100,
        "saturates_at_batch": 8,
        "images_per_s_at_saturation": 8420,
        "latency_ms_at_saturation": 0.95,
        "best_images_per_s": 9000,
        "best_batch": 64,
    }
    pt = {"batch": 1, "workers": 2, "ms_per_batch": 1.0, "ms_per_batch_min": 0.9}
    summary = {
        "by_workers": {"1": one, "2": {**one, "executor": "blas"}},
        "points": [{**pt, "ms_per_batch_max": 1.1, "tasks": 1}],
        "failures": [],
        "other_cpu_cores": None,
        "load_average_1min": None,
    }
    text = batching.explain(summary, lab)
    assert "0.1x the latency" not in text and "costs" not in text
    assert "A call at batch 8 took less time than one at batch 1 (0.95 against 10.00 ms)" in text
    assert "84.2x the throughput" in text
    assert "one worker idled" not in text
    assert "a single task whose matrix multiplies BLAS runs on its 2 threads" in text
    summary["by_workers"]["2"]["executor"] = "threads"
    assert "single task: one worker idled" in batching.explain(summary, lab)
