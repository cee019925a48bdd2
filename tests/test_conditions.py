"""Measurement conditions: the reader against fake /proc and /sys trees, the run's record
through a snapshot, the CLI's line and the runs table's mark."""

import json
from dataclasses import replace

import pytest

from partui.profiles.files.checked_json import FileProblem
from partui.profiles.records.config import RunConfig
from partui.profiles.records.events import CpuSample
from partui.profiles.run.engine import Engine
from partui.profiles.store.analysis import analyze
from partui.profiles.store.snapshot import Snapshot, load, save
from partui.profiles.store.snapshot_validation import SnapshotError
from partui.profiles.system.conditions import Conditions, check_conditions, read_conditions
from partui.tui.cli import main as cli
from partui.tui.cli.commands.run_report import run_report
from partui.tui.dashboard.widgets.runs_table import run_row

CPU = "sys/devices/system/cpu"


def tree(root, files: dict) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode())


def loud_machine(root) -> None:
    """Two CPUs, one on powersave, turbo on, a CPU isolated, a busy load, throttle counters."""
    tree(
        root,
        {
            f"{CPU}/cpu0/cpufreq/scaling_governor": "powersave\n",
            f"{CPU}/cpu1/cpufreq/scaling_governor": "performance\n",
            f"{CPU}/cpu0/thermal_throttle/core_throttle_count": "3\n",
            f"{CPU}/cpu0/thermal_throttle/package_throttle_count": "4\n",
            f"{CPU}/cpu1/thermal_throttle/core_throttle_count": "0\n",
            f"{CPU}/intel_pstate/no_turbo": "0\n",
            f"{CPU}/isolated": "1\n",
            "proc/loadavg": "3.50 2.00 1.25 4/300 1234\n",
            "proc/sys/kernel/randomize_va_space": "2\n",
        },
    )


def sample(others: float | None, window_ms: float) -> CpuSample:
    return CpuSample(0, [0.0], {}, 0.0, 0.0, int(window_ms * 1e6), 0.0, others)


def test_the_reader_reads_every_condition_and_names_what_moves_figures(tmp_path):
    loud_machine(tmp_path)
    c = read_conditions(tmp_path)
    assert c.governors == ["powersave", "performance"]
    assert c.boost is True and c.aslr == 2 and c.isolated == "1"
    assert c.load == [3.5, 2.0, 1.25] and c.cpus == 2
    assert c.throttle_since_boot == 7
    assert not c.quiet and c.unknown() == []
    text = " | ".join(c.reasons())
    assert "governor powersave" in text and "performance" not in text
    assert "turbo boost on" in text
    assert "load average 3.5 on 2 CPUs" in text
    assert any("ASLR on" in n for n in c.notes()) and any("isolated CPUs 1" in n for n in c.notes())


def test_a_tuned_machine_is_quiet(tmp_path):
    tree(
        tmp_path,
        {
            f"{CPU}/cpu0/cpufreq/scaling_governor": "performance",
            f"{CPU}/cpu1/cpufreq/scaling_governor": "performance",
            f"{CPU}/cpufreq/boost": "0",  # acpi-cpufreq's switch, when intel_pstate is absent
            "proc/loadavg": "1.90 1.00 1.00 1/100 1",  # under the 2 CPUs
            "proc/sys/kernel/randomize_va_space": "0",
        },
    )
    c = read_conditions(tmp_path)
    assert c.boost is False and c.aslr == 0
    assert c.quiet and c.reasons() == [] and c.notes() == []
    assert c.line() == "quiet; unknown here: isolated CPUs, throttling"
    assert c.line(unknown=False) == "quiet"


def test_missing_and_garbled_files_are_unknown_never_an_error(tmp_path):
    empty = read_conditions(tmp_path / "nothing-here")
    assert empty == Conditions()
    assert empty.quiet and len(empty.unknown()) == 6
    assert empty.line().startswith("quiet; unknown here: CPU governor, turbo, ASLR")
    tree(
        tmp_path,
        {
            f"{CPU}/cpu0/cpufreq/scaling_governor": b"",
            f"{CPU}/intel_pstate/no_turbo": "yes",
            f"{CPU}/cpu0/thermal_throttle/core_throttle_count": b"\xff\xfe",
            "proc/loadavg": "high",
            "proc/sys/kernel/randomize_va_space": "",
        },
    )
    (tmp_path / f"{CPU}/isolated").mkdir(parents=True)  # a folder where a file was expected
    c = read_conditions(tmp_path)
    assert (c.governors, c.boost, c.aslr, c.isolated, c.load) == ([], None, None, None, None)
    assert c.throttle_since_boot is None and c.cpus == 1


def test_a_run_completes_them_with_throttling_and_other_programs_cpu(tmp_path):
    loud_machine(tmp_path)
    c = read_conditions(tmp_path)
    tree(tmp_path, {f"{CPU}/cpu1/thermal_throttle/core_throttle_count": "5"})
    # windows of 100 and 300 ms: the mean is weighted by the time each sample covers
    start = c
    c = c.finished([sample(20.0, 100), sample(None, 50), sample(80.0, 300)], tmp_path)
    assert start.throttled is None and start.others_cpu is None  # the start's reading stays
    assert c.throttled == 5
    assert c.others_cpu == pytest.approx((20 * 100 + 80 * 300) / 400) and c.others_max == 80.0
    assert c.busy
    assert "other programs used 0.7 core during the run" in c.reasons()
    assert "CPU throttled by heat 5 times during the run" in c.reasons()
    calm = Conditions().finished([sample(50.0, 100)], tmp_path / "none")
    assert not calm.busy and calm.throttled is None  # half a core exactly is not over it
    assert calm.line(unknown=False) == "quiet (other programs 0.5 core during the run)"


@pytest.fixture(scope="module")
def tiny_run():
    with Engine() as engine:
        return engine.run(RunConfig("gelu3", "none", "loops", "inline", workers=1, batch=2))


def test_every_run_records_them_and_its_report_says_them(tiny_run):
    c = tiny_run.conditions
    assert isinstance(c, Conditions) and c == replace(c)  # read by the engine itself
    assert c.load is not None  # /proc/loadavg is there on Linux
    (line,) = [x for x in run_report(tiny_run).splitlines() if x.startswith("conditions: ")]
    assert line == "conditions: " + c.line()


def test_snapshot_round_trip_and_old_snapshots_without_them(tmp_path, tiny_run):
    r = replace(tiny_run, conditions=Conditions(["schedutil"], True, 2, "", [0.5, 0.2, 0.1], 2))
    r.conditions.others_cpu, r.conditions.throttled = 75.0, 0
    path = save(Snapshot.from_results([r]), tmp_path / "a.json")
    (back,) = load(path).results()
    assert back.conditions == r.conditions and back.conditions.busy
    data = json.loads(path.read_text())
    assert data["runs"][0]["conditions"]["reasons"] == r.conditions.reasons()
    del data["runs"][0]["conditions"]  # as partui wrote snapshots before it recorded them
    (tmp_path / "old.json").write_text(json.dumps(data))
    assert load(tmp_path / "old.json").results()[0].conditions is None
    data["runs"][0]["conditions"] = {**r.conditions.to_dict(), "others_cpu": "lots"}
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(SnapshotError, match=r"runs\[0\]\.conditions\.others_cpu"):
        load(tmp_path / "bad.json")


@pytest.mark.parametrize(
    "bad,where",
    [
        ({"boost": "yes"}, "c.boost"),
        ({"governors": ["x" * 101]}, r"c.governors\[0\]"),
        ({"load": [1.0, float("inf")]}, r"c.load\[1\]"),
        ({"aslr": -1}, "c.aslr"),
        ({"temperature": 80}, "unknown field"),
        ({"reasons": [3]}, r"c.reasons\[0\]"),
    ],
)
def test_a_saved_record_is_checked_field_by_field(bad, where):
    with pytest.raises(FileProblem, match=where):
        check_conditions({**Conditions().to_dict(), **bad}, "c")


def test_info_conditions_prints_every_reading_and_json(capsys):
    assert cli.main(["info", "--conditions"]) == 0
    out = capsys.readouterr().out
    for name in ("CPU governor", "turbo boost", "ASLR", "isolated CPUs", "load average"):
        assert name in out
    assert "quiet" in out
    assert cli.main(["info", "--conditions", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["quiet"] == (data["reasons"] == []) and "governors" in data


def test_the_runs_table_marks_a_run_other_programs_crowded(tiny_run):
    def ok_cell(others):
        c = replace(Conditions(), others_cpu=others)
        row = analyze([replace(tiny_run, conditions=c)], {}, "test").rows[0]
        return run_row(1, row)[2].plain

    assert ok_cell(120.0) == "ok busy"
    assert ok_cell(30.0) == "ok"
    assert ok_cell(None) == "ok"  # not measured: no mark


def test_run_and_sweep_json_carry_them(tmp_path, capsys):
    from cli_fixtures import TINY_SWEEP

    tiny = ["run", "--layer", "gelu3", "--strategy", "none", "--kernel", "loops"]
    assert (
        cli.main([*tiny, "--executor", "inline", "--workers", "1", "--batch", "2", "--json"]) == 0
    )
    c = json.loads(capsys.readouterr().out)["conditions"]
    assert check_conditions(c, "c") and c["quiet"] == (c["reasons"] == [])
    out = str(tmp_path / "s.json")
    assert cli.main([*TINY_SWEEP, "--json", "--no-book", "--out", out]) == 0
    (run,) = json.loads(capsys.readouterr().out)["runs"]
    assert check_conditions(run["conditions"], "c") and run["conditions"]["load"] is not None


def test_sweep_and_show_tables_mark_a_crowded_run(tiny_run):
    from partui.tui.text.reports import report

    calm = replace(tiny_run, conditions=replace(Conditions(), others_cpu=10.0))
    busy = replace(tiny_run, conditions=replace(Conditions(), others_cpu=90.0))
    text = report(analyze([calm, busy], {}, "test"))
    rows = [line for line in text.splitlines() if line.startswith("gelu3")]
    assert rows[0].endswith(" ok") and rows[1].endswith(" ok busy")
    assert "busy: other programs held over half a core" in text
    assert "busy: other programs" not in report(analyze([calm], {}, "test"))
