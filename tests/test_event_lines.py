"""`--stream`: a run's events as JSON lines. A consumer rebuilds the run from them; nothing is
written while a repeat is timed; a reader that goes away ends partui quietly."""

import io
import json
import statistics
import subprocess
import sys
import time
from dataclasses import replace

import pytest
from waiting import budget

from partui.profiles.records.config import RunConfig
from partui.profiles.records.event_lines import FORMAT, VERSION
from partui.profiles.run.engine import Engine
from partui.tui.cli import main as cli
from partui.tui.cli.commands.stream_output import LineStream

SMALL = RunConfig("gelu3", "batch", "loops", "threads", workers=2, batch=4, repeats=2)
TINY = ["run", "--layer", "gelu3", "--strategy", "none", "--kernel", "loops"]
TINY += ["--executor", "inline", "--workers", "1", "--batch", "2", "--repeat", "3"]


class Clocked(io.StringIO):
    """An output that notes when each line was written (the spans' clock)."""

    def __init__(self):
        super().__init__()
        self.at: list[int] = []

    def write(self, text):
        self.at.append(time.perf_counter_ns())
        return super().write(text)


def strict(line: str) -> dict:
    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(line, parse_constant=refuse)


def rebuild(lines: list[dict]) -> dict:
    """What a consumer keeps of a one-run stream: timed spans by repeat, repeat times, the end."""
    runs = {d["run"] for d in lines if "run" in d}
    assert len(runs) == 1, runs
    spans: dict[int, list] = {}
    times: dict[int, float] = {}
    for d in lines:
        if d["event"] == "span" and d["repeat"] >= 0:
            spans.setdefault(d["repeat"], []).append(
                (d["worker"], d["task"], d["phase"], d["start_ns"], d["end_ns"])
            )
        elif d["event"] == "repeat_done" and not d["warmup"]:
            times[d["repeat"]] = d["ms"]
    (done,) = [d for d in lines if d["event"] == "run_done"]
    return {"spans": spans, "times": times, "done": done}


def test_a_consumer_rebuilds_the_median_repeat_from_the_stream():
    out = Clocked()
    cfg = RunConfig("gelu3", "batch", "loops", "threads", workers=2, batch=8, repeats=5)
    with Engine() as engine:
        result = engine.run(cfg, emit=LineStream("run", out=out))
    text = out.getvalue()
    assert text.endswith("\n")
    lines = [strict(x) for x in text.splitlines()]
    assert all(d["v"] == VERSION for d in lines)
    head, started = lines[0], lines[1]
    assert head["event"] == "stream" and head["format"] == FORMAT and head["command"] == "run"
    assert started["event"] == "run_started" and started["config"] == cfg.to_dict()
    assert started["conditions"]["load"] is not None
    got = rebuild(lines)
    # the median repeat: the same time and the same spans as the result holds
    median = statistics.median(got["times"].values())
    assert median == result.median_ms == got["done"]["median_ms"]
    rep = next(r for r, ms in got["times"].items() if ms == median)
    want = sorted(
        (s.worker, s.task, s.phase, s.start_ns, s.end_ns) for s in result.spans if s.repeat == rep
    )
    assert sorted(got["spans"][rep]) == want and len(want) == 2
    assert sum(len(v) for v in got["spans"].values()) == len(result.spans)
    assert got["done"]["times_ms"] == result.times_ms and got["done"]["ok"] is True
    assert got["done"]["conditions"] == json.loads(json.dumps(result.conditions.to_dict()))
    # nothing was written while a repeat was timed: lines wait for the repeat's end
    windows = [(d["start_ns"], d["start_ns"] + d["wall_ns"]) for d in lines if "wall_ns" in d]
    assert len(windows) == cfg.warmup + cfg.repeats
    assert not [t for t in out.at for a, b in windows if a <= t <= b]


class ClosesAfter(io.StringIO):
    """A reader that reads `n` lines and goes away."""

    def __init__(self, n: int):
        super().__init__()
        self.left = n

    def write(self, text):
        if self.left == 0:
            raise BrokenPipeError(32, "Broken pipe")
        self.left -= 1
        return super().write(text)


def test_a_reader_that_goes_away_stops_the_run_and_the_stream():
    out = ClosesAfter(3)
    stream = LineStream("run", out=out)
    with Engine() as engine:
        with pytest.raises(BrokenPipeError):
            engine.run(replace(SMALL, repeats=50), emit=stream)
        assert stream.closed and len(out.getvalue().splitlines()) == 3
        with pytest.raises(BrokenPipeError):  # it stays closed: no line is half-written later
            stream.write_held()
        # the engine runs on for another reader
        assert engine.run(SMALL).ok


def test_the_stream_has_stdout_to_itself_and_json_is_refused_beside_it(capsys):
    assert cli.main([*TINY, "--stream"]) == 0
    captured = capsys.readouterr()
    lines = [strict(x) for x in captured.out.splitlines()]
    assert [d["event"] for d in lines if d["event"] != "cpu_sample"] == [
        "stream",
        "run_started",
        *["span", "repeat_done"] * 4,  # the warm-up and three repeats
        "run_done",
    ]
    assert "max abs error" in captured.err and "conditions: " in captured.err
    assert cli.main([*TINY, "--stream", "--json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--stream and --json" in err[0]


@pytest.mark.processes
def test_head_closing_the_pipe_ends_partui_quietly():
    """`partui run ... --stream | head -3`: more lines than a pipe holds, the reader leaves."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "partui.tui.cli.main", "run", "--layer", "conv2", "--batch", "2"]
        + ["--workers", "2", "--repeat", "400", "--warmup", "0", "--stream"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = [proc.stdout.readline() for _ in range(3)]
    proc.stdout.close()
    err = proc.stderr.read()
    code = proc.wait(timeout=budget(60))
    assert [strict(x)["event"] for x in first[:2]] == ["stream", "run_started"]
    assert code == 0, err
    assert "Traceback" not in err and "Exception ignored" not in err and "Broken" not in err
    # what reached stderr is at most the first run's compile note: no report of a run cut off
    assert all(line.startswith("partui: ") and "compil" in line for line in err.splitlines())


def test_a_sweep_streams_every_run_and_reports_on_stderr(tmp_path, capsys):
    from cli_fixtures import TINY_SWEEP

    out = str(tmp_path / "s.json")
    args = [*TINY_SWEEP, "--workers", "1", "--repeat", "2", "--no-book", "--out", out]
    assert cli.main([*args, "--stream"]) == 0
    captured = capsys.readouterr()
    lines = [strict(x) for x in captured.out.splitlines()]
    assert lines[0]["command"] == "sweep"
    assert [d["run"] for d in lines if d["event"] == "run_done"] == [1]
    assert "snapshot saved to" in captured.err and "baselines" in captured.err
