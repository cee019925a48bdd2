"""Chrome trace and CSV exports of a snapshot."""

import csv
import io
import json

from test_stats import fake

from partui.profiles.records.events import CpuSample, Span
from partui.profiles.store.export import REPEAT_TID, chrome_trace, csv_text
from partui.profiles.store.snapshot import Snapshot
from partui.profiles.system.machine import MachineInfo

MACHINE = MachineInfo(cpu_model="Test CPU", logical_cores=2)


def with_spans(result, pids):
    """Two repeats of one task per worker, 1 ms each, 2 CPU samples over 2 cores."""
    t = 1_000_000_000
    spans = []
    for rep in range(2):
        for w, pid in enumerate(pids):
            start = t + rep * 2_000_000 + w * 100_000
            spans.append(Span(w, pid, start, start + 1_000_000, 10, task=w, repeat=rep, run=1))
    result.spans = spans
    result.cpu_samples = [
        CpuSample(t + 1_000_000, [50.0, 75.0], {0: 0.001}, 30.0, 80.0),
        CpuSample(t + 3_000_000, [100.0, 0.0], {0: 0.002}, 40.0, 90.0),
    ]
    return result


def snapshot():
    threads = with_spans(fake(workers=2), [111, 112])
    procs = with_spans(fake(workers=2, executor="processes"), [5001, 5002])
    return Snapshot.from_results([threads, procs], machine=MACHINE, note="n")


def test_chrome_trace_has_a_lane_per_worker_tasks_and_cpu_counters():
    trace = json.loads(json.dumps(chrome_trace(snapshot())))  # valid JSON
    events = trace["traceEvents"]
    x = [e for e in events if e["ph"] == "X"]
    tasks = [e for e in x if e["cat"] != "repeat"]
    repeats = [e for e in x if e["cat"] == "repeat"]
    counters = [e for e in events if e["ph"] == "C"]
    assert len(tasks) == 2 * 4 and len(repeats) == 2 * 2
    assert len(counters) == 2 * 2 * (2 + 1)  # runs x samples x (cores + engine)
    first = min(tasks, key=lambda e: e["ts"])
    assert first["ts"] == 0 and first["dur"] == 1000.0  # microseconds
    # thread workers: lanes of run 1 (pid 1), tid = worker index, named with native ids
    run1 = [e for e in tasks if e["pid"] == 1]
    assert {e["tid"] for e in run1} == {0, 1}
    names = {
        (e["pid"], e.get("tid")): e["args"]["name"]
        for e in events
        if e["ph"] == "M" and e["name"] in ("thread_name", "process_name")
    }
    assert names[(1, 0)] == "worker 0 (tid 111)" and names[(1, REPEAT_TID)] == "repeats"
    assert names[(1, None)].startswith("run 1: conv2 batch/vectorized/threads w=2")
    # process workers: under their own pid
    assert {e["pid"] for e in tasks if e["args"]["run"] == 2} == {5001, 5002}
    assert names[(5001, None)] == "worker 0 (pid 5001)"
    cpu1 = [e for e in counters if e["pid"] == 1 and e["name"] == "cpu1 %"]
    assert [e["args"]["%"] for e in cpu1] == [75.0, 0.0]
    assert all(k in e for e in x for k in ("name", "ph", "ts", "dur", "pid", "tid"))


def test_csv_has_one_row_per_run():
    rows = list(csv.DictReader(io.StringIO(csv_text(snapshot()))))
    assert len(rows) == 2
    assert rows[0]["executor"] == "threads" and rows[1]["executor"] == "processes"
    assert float(rows[0]["median_ms"]) == 5.0 and rows[0]["ok"] == "True"
    assert rows[0]["speedup_vs_baseline"] == ""  # no single-worker run: no baseline, no number


def test_cpu_counters_keep_their_units_and_leave_out_what_was_not_read():
    """Per core 0-100; processes in % of one core, capped at 100 x cores; unread: absent."""
    result = fake(workers=2)
    t = 1_000_000_000
    result.spans = [Span(0, 7, t, t + 10, 1, repeat=0, run=1)]
    result.cpu_samples = [
        CpuSample(
            t + 5, [float("nan"), 40.0], {}, 2714.0, 50.0, partui_cpu=2714.0, others_cpu=30.0
        ),
        CpuSample(t + 9, [100.0, 20.0], {}, 90.0, 50.0),
    ]
    snap = Snapshot.from_results([result], machine=MACHINE, note="n")
    counters = [e for e in chrome_trace(snap)["traceEvents"] if e["ph"] == "C"]
    by_name = {}
    for e in counters:
        by_name.setdefault(e["name"], []).append(e["args"]["%"])
    assert by_name["cpu0 %"] == [100.0]  # the unread first value is not a fake 0%
    assert by_name["cpu1 %"] == [40.0, 20.0]
    assert by_name["engine CPU % of one core"] == [200.0, 90.0]  # 2 cores: at most 200
    assert by_name["partui CPU % of one core"] == [200.0]
    assert by_name["other programs CPU % of one core"] == [30.0]


def test_the_streamed_trace_is_the_whole_trace_byte_for_byte():
    """The trace written a chunk at a time is the one object's JSON, across chunk edges."""
    from partui.profiles.store import export

    snap = snapshot()
    whole = json.dumps(chrome_trace(snap), separators=(",", ":")) + "\n"
    for per_chunk in (1, 3, 1024):
        export.EVENTS_PER_CHUNK, saved = per_chunk, export.EVENTS_PER_CHUNK
        try:
            chunks = list(export.chrome_trace_text(snap))
        finally:
            export.EVENTS_PER_CHUNK = saved
        assert "".join(chunks) == whole
    assert len(chunks) < len(json.loads(whole)["traceEvents"])  # it was made in pieces


PEAK_SCRIPT = """
import re, sys
from partui.tui.cli.main import main
code = main(sys.argv[1:])
print(code, int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read())[1]) // 1024)
"""


def test_exporting_a_large_snapshot_takes_no_more_memory_than_reading_it(tmp_path):
    """The trace is written as it is made: `export` peaks where `show` (which reads the
    same snapshot) peaks, not at the trace's objects and text on top of it."""
    import subprocess
    import sys

    from partui.profiles.store.snapshot import save

    snap = snapshot()
    r = snap.runs[0]
    r.spans = [
        Span(
            s.worker,
            s.tid,
            s.start_ns + 10 * i,
            s.end_ns + 10 * i,
            s.units,
            s.task,
            s.phase,
            s.repeat,
            s.run,
        )
        for i in range(20_000)
        for s in r.spans[:4]
    ]
    big = save(snap, tmp_path / "big.json")

    def peak(*argv):
        proc = subprocess.run(
            [sys.executable, "-c", PEAK_SCRIPT, *argv], capture_output=True, text=True
        )
        code, mb = map(int, proc.stdout.splitlines()[-1].split())
        assert code == 0, proc.stderr
        return mb

    shown = peak("show", str(big))
    exported = peak("export", str(big), "--format", "chrome", "-o", str(tmp_path / "t.json"))
    assert exported <= shown * 1.1 + 10, (exported, shown)
    # and reading it takes a few times the file's size (the text, then the records made from
    # it), on top of what the interpreter and numpy take: not seventeen times
    size_mb = big.stat().st_size / 2**20
    assert size_mb > 10 and shown <= 6 * size_mb + 60, (shown, size_mb)
