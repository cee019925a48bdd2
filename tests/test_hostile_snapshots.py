"""Nothing partui reads can crash it, exhaust its memory or write escape sequences to the
terminal.

Crafted snapshots and books: `partui show` exits 2 with one line naming the field, the
dashboard shows the same message and stays up, and a property test mutates a real snapshot
every which way. Special files (FIFOs, device nodes) are made in the test's temp folder.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import stat
import subprocess
import sys
import textwrap
import time
import tracemalloc

import pytest
from cli_fixtures import TINY_SWEEP
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from waiting import budget

from partui.profiles.store.snapshot import load
from partui.profiles.store.snapshot_validation import SnapshotError
from partui.profiles.system.machine import MachineInfo

ESC_TITLE = "\x1b]0;pwned\x07\x1b[2J"


@pytest.fixture(scope="module")
def real(saved_snapshot):
    return json.loads(saved_snapshot.read_text())


def mutated(real, path, value, tmp_path, name="bad.json"):
    d = copy.deepcopy(real)
    *where, last = path
    node = d
    for k in where:
        node = node[k]
    node[last] = value
    p = tmp_path / name
    p.write_text(
        json.dumps(d, allow_nan=True)
        .replace('"__4400_DIGITS__"', "7" * 4400)
        .replace('"__1E400__"', "1e400")
    )
    return p


def run_cli(capsys, *args):
    from partui.tui.cli.main import main

    capsys.readouterr()
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code
    return (code, *capsys.readouterr())


# (group shown in the test id: 2 a bad value, 3 a huge count, 4 a wrong type, key or name, 9 a
# Dask field; path in the snapshot, value, word the message must name)
CRAFTED = [
    (2, ("runs", 0, "config", "workers"), 0, "workers"),
    (2, ("runs", 0, "config", "workers"), -3, "workers"),
    (3, ("runs", 0, "config", "workers"), 10**9, "workers"),
    (2, ("runs", 0, "median_ms"), 0, "median_ms"),
    (2, ("runs", 0, "median_ms"), -1, "median_ms"),
    (2, ("runs", 0, "median_ms"), float("nan"), "median_ms"),
    (2, ("runs", 0, "times_ms"), [float("nan")], "times_ms[0]"),
    (2, ("runs", 0, "config", "layer"), "conv9", "layer"),
    (2, ("runs", 0, "worker_busy_ms"), ["x"], "worker_busy_ms"),
    (2, ("runs", 0, "on_cpu_ratio"), "abc", "on_cpu_ratio"),
    (2, ("runs", 0, "cpu_samples"), 5, "cpu_samples"),
    (2, ("runs", 0, "repeat_start_ns"), [-5], "repeat_start_ns[0]"),
    (2, ("runs", 0, "repeat_start_ns"), list(range(99)), "repeat_start_ns"),
    (2, ("runs", 0, "worker_cpus"), ["cpu0"], "worker_cpus[0]"),
    (2, ("runs", 0, "worker_cpus"), list(range(99)), "worker_cpus"),
    (2, ("runs", 0, "flops"), "__1E400__", "flops"),
    (2, ("runs", 0, "max_ms"), "__1E400__", "max_ms"),
    (3, ("runs", 0, "spans", 0, "worker"), 10**9, "worker"),
    (4, ("runs", 0, "spans", 0, "extra"), 1, "extra"),
    (4, ("runs", 0, "spans", 0, "start_ns"), "1", "start_ns"),
    (4, ("machine", "blas"), "openblas", "blas"),
    (4, ("runs", 0, "tasks"), "__4400_DIGITS__", "4300"),
    (4, ("runs", 0, "config", "strategy"), "strategie", "strategy"),
    (9, ("runs", 0, "dask"), {"workers": [1]}, "dask.workers[0]"),
    (9, ("runs", 0, "dask"), {"workers": "w"}, "dask.workers"),
    (9, ("runs", 0, "dask"), {"scheduler": 5}, "dask.scheduler"),
    (9, ("runs", 0, "dask"), {"bytes_out_per_repeat": "1"}, "bytes_out_per_repeat"),
]


def deep(n):
    return "[" * n + "]" * n


@pytest.mark.parametrize(
    "finding,path,value,word",
    CRAFTED,
    ids=[f"{c[0]}-{'.'.join(map(str, c[1]))}={str(c[2])[:12]}" for c in CRAFTED],
)
def test_show_refuses_crafted_snapshots(real, tmp_path, capsys, finding, path, value, word):
    """`show`, `export` and `compare`: exit 2 and one line naming the field, never a class
    name or a traceback."""
    bad = mutated(real, path, value, tmp_path)
    code, out, err = run_cli(capsys, "show", bad)
    assert code == 2, err
    assert err.count("\n") == 1 and word in err and "Error:" not in err, err
    assert out == ""
    for cmd in (
        ["export", bad, "--format", "csv"],
        ["export", bad, "--format", "chrome"],
        ["compare", bad, bad],
    ):
        code, out, err = run_cli(capsys, *cmd)
        assert code == 2 and err.count("\n") == 1, err


def test_nested_json_is_refused_before_parsing(tmp_path, capsys):
    """A 100,000-deep file is refused by the depth cap (the parser never recurses)."""
    p = tmp_path / "deep.json"
    p.write_text('{"format": "partui-snapshot", "x": ' + deep(100_000) + "}")
    code, _, err = run_cli(capsys, "show", p)
    assert code == 2 and "nested" in err and err.count("\n") == 1


def test_huge_and_endless_files_are_refused(tmp_path, capsys):
    """A file past the size cap is refused from its size (a sparse 5 GB file, read
    in no time); a FIFO or a device is refused before a byte is read."""
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(5 * 2**30)
    tracemalloc.start()
    code, _, err = run_cli(capsys, "show", big)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert code == 2 and "MiB" in err and peak < 5 * 2**20
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    code, _, err = run_cli(capsys, "show", fifo)
    assert code == 2 and "not a regular file" in err
    zero = tmp_path / "zero.json"
    try:
        os.mknod(zero, stat.S_IFCHR | 0o400, os.makedev(1, 5))  # like /dev/zero, made here
    except PermissionError:
        return
    code, _, err = run_cli(capsys, "show", zero)
    assert code == 2 and "not a regular file" in err


def test_show_and_compare_strip_escape_sequences(real, tmp_path, capsys):
    """A note or machine field cannot set the window title or clear the screen."""
    d = copy.deepcopy(real)
    d["note"] = "hello " + ESC_TITLE
    d["machine"]["cpu_model"] = "cpu " + ESC_TITLE
    d["machine"]["hostname"] = "\x9b2J" + "host"
    p = tmp_path / "esc.json"
    p.write_text(json.dumps(d))
    for cmd in (["show", p], ["compare", p, p]):
        code, out, err = run_cli(capsys, *cmd)
        assert code == 0, err
        assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out
    code, out, _ = run_cli(capsys, "show", p)
    assert "hello \\x1b]0;pwned\\x07" in out


# ---- the baseline book ----------------------------------------------------------------------


def book_text(machine_fp, entries):
    return json.dumps(
        {"format": "partui-baselines", "version": 1, "machines": {machine_fp: entries}},
        allow_nan=True,
    )


def good_entry():
    return {
        "median_ms": 1.5,
        "measured": "2026-11-01T00:00:00+00:00",
        "config": {
            "layer": "gelu3",
            "strategy": "none",
            "kernel": "vectorized",
            "executor": "inline",
            "workers": 1,
            "batch": 2,
            "repeats": 1,
            "warmup": 0,
            "seed": 0,
        },
    }


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: [e],  # machines[fp] a list
        lambda e: {"gelu3/vectorized/b2": {**e, "median_ms": -1}},
        lambda e: {"gelu3/vectorized/b2": {**e, "median_ms": 0}},
        lambda e: {"gelu3/vectorized/b2": {**e, "median_ms": float("nan")}},
        lambda e: {
            "gelu3/vectorized/b2": {
                **e,
                "config": {k: v for k, v in e["config"].items() if k != "strategy"},
            }
        },
        lambda e: {"gelu3/vectorized/b2": json.loads(deep(50))},
    ],
    ids=["list", "negative", "zero", "nan", "no-strategy", "nested"],
)
def test_a_broken_book_is_noted_and_rebuilt(tmp_path, monkeypatch, capsys, mutate):
    """A sweep with a broken book still saves its snapshot, says so in one line,
    shows no negative speedup, and leaves a rebuilt book and no temp file."""
    from partui.profiles.system.machine import info

    book = tmp_path / "book.json"
    book.write_text(book_text(info().fingerprint(), mutate(good_entry())))
    monkeypatch.setenv("PARTUI_BASELINE_BOOK", str(book))
    out_file = tmp_path / "s.json"
    code, out, err = run_cli(capsys, *TINY_SWEEP, "--out", out_file)
    assert code == 0, err
    assert "baseline book" in err and "ignored" in err
    assert out_file.exists() and not re.search(r"-\d+\.\d+x", out)  # no negative speedup
    from partui.profiles.store.baselines import BaselineBook

    assert BaselineBook(book).problem is None  # rebuilt from this sweep
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


async def test_a_broken_book_does_not_crash_the_dashboard(tmp_path, monkeypatch):
    from partui.profiles.records.config import RunConfig
    from partui.profiles.service.engine import EngineThread
    from partui.tui.dashboard.app import PartuiApp

    book = tmp_path / "book.json"
    book.write_text(json.dumps({"format": "partui-baselines", "machines": {"x": [1]}}))
    monkeypatch.setenv("PARTUI_BASELINE_BOOK", str(book))
    app = PartuiApp(
        snapshot_dir=tmp_path,
        config=RunConfig(
            "gelu3", strategy="none", executor="inline", workers=1, batch=2, repeats=1, warmup=0
        ),
        engine_factory=EngineThread,
        live_loop=False,
        machine=MachineInfo(cpu_model="x"),
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert any("baseline book" in n.message for n in app._notifications)
        await pilot.press("r")
        import asyncio

        for _ in range(500):
            app.tick()
            if app.session.runs:
                break
            await asyncio.sleep(0.02)
        app.redraw(force=True)
        assert app.session.runs and app.is_running


# ---- the dashboard ----------------------------------------------------------------------------


async def test_dashboard_shows_crafted_snapshots_as_messages(real, tmp_path):
    """Every crafted file, opened (as `partui FILE` and the browser's enter do),
    exported with x and listed by o, is a notification; the dashboard stays up."""
    from partui.profiles.records.config import RunConfig
    from partui.profiles.service.engine import EngineThread
    from partui.tui.dashboard.app import PartuiApp
    from partui.tui.dashboard.screens.browser import SnapshotBrowser

    folder = tmp_path / "mk["  # with the file below: a path holding "[/]" (Rich markup)
    folder.mkdir()
    paths = [
        mutated(real, path, value, folder, f"{i}.json")
        for i, (_, path, value, _) in enumerate(CRAFTED)
    ]
    (folder / "deep.json").write_text(deep(100_000))
    good = folder / "]ok.json"
    good.write_text(json.dumps(real))
    app = PartuiApp(
        snapshot_dir=folder / "]dir",
        config=RunConfig("conv2", workers=2, batch=4),
        engine_factory=EngineThread,
        live_loop=False,
        machine=MachineInfo(cpu_model="x"),
    )
    async with app.run_test(size=(120, 40)) as pilot:
        for (_, _, _, word), p in zip(
            CRAFTED + [(0, 0, 0, "nested")], paths + [folder / "deep.json"]
        ):
            app.load_snapshot(p)
            await pilot.pause()
            assert app.profile.viewing is None
            last = list(app._notifications)[-1]
            assert last.severity == "error" and p.name in last.message and word in last.message
        app.load_snapshot(good)  # "[/]" in the path: shown as text
        assert app.profile.viewing is not None
        app.redraw(force=True)
        await pilot.press("x")  # export the viewed snapshot into a folder named with "[/]"
        await pilot.pause()
        assert any(p.suffix == ".csv" for p in (folder / "]dir").iterdir())
        await pilot.press("s")
        await pilot.pause()
        app.snapshot_dir = folder
        await pilot.press("o")
        await pilot.pause()
        browser = app.screen
        assert isinstance(browser, SnapshotBrowser)
        errors = [s for s in browser.summaries if s.error]
        assert len(errors) == len(paths) + 1
        await pilot.press("escape")
        assert app.is_running


# ---- the property test ---------------------------------------------------------------------

ODD_VALUES = st.sampled_from(
    [
        None,
        True,
        False,
        -1,
        0,
        1,
        10**9,
        -(10**18),
        2**70,
        0.5,
        -0.0,
        1e308,
        "",
        "x",
        "[/]",
        ESC_TITLE,
        [],
        {},
        [1, "a"],
        {"a": 1},
        [[[[[]]]]],
        1e-320,
    ]
)


def paths_of(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths_of(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node[:3]):  # the first few items stand for the rest
            yield from paths_of(v, prefix + (i,))


@pytest.fixture(scope="module")
def all_paths(real):
    return [p for p in paths_of(real) if p]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mutated_snapshots_load_or_fail_in_one_line(real, all_paths, tmp_path, data):
    """As a property: change, delete, nest or add anything in a real snapshot;
    loading gives a good snapshot or one line (exit 2), everything downstream of a snapshot
    that loads works, and memory stays within a fixed bound."""
    d = copy.deepcopy(real)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(all_paths))
        node = d
        try:
            for k in path[:-1]:
                node = node[k]
            node[path[-1]]
        except (KeyError, IndexError, TypeError):
            continue
        how = data.draw(st.sampled_from(["value", "delete", "nest", "extra"]))
        if how == "value":
            node[path[-1]] = data.draw(ODD_VALUES)
        elif how == "delete":
            del node[path[-1]]
        elif how == "nest":
            node[path[-1]] = [node[path[-1]]]
        elif isinstance(node[path[-1]], dict):
            node[path[-1]]["unexpected"] = data.draw(ODD_VALUES)
    p = tmp_path / "m.json"
    p.write_text(json.dumps(d, allow_nan=True))
    tracemalloc.start()
    try:
        try:
            snap = load(p)
        except SnapshotError as exc:
            message = str(exc)
            assert "\n" not in message and message.startswith(str(p))
            return
        exercise_everything_downstream(snap, p)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 64 * 2**20


def exercise_everything_downstream(snap, path):
    """What show, export, compare and the dashboard do with a loaded snapshot."""
    from partui.profiles.store.analysis import analyze
    from partui.profiles.store.export import chrome_trace, csv_text
    from partui.tui.dashboard.snapshots import model_from_snapshot
    from partui.tui.text.reports import compare_report, report

    report(analyze(snap.results(), snap.baseline, "this snapshot"))
    compare_report(snap, snap)
    json.dumps(chrome_trace(snap), allow_nan=False)
    csv_text(snap)
    model = model_from_snapshot(path, max_workers=2)
    for r in model.runs:
        assert math.isfinite(r.median_ms) and r.median_ms > 0
        assert all(0 <= s.worker < r.config.workers for s in r.spans)


# ---- the reader's time and memory -------------------------------------------------------------


def unterminated(n_escapes: int) -> bytes:
    """A note that never ends, full of escaped quotes: the worst case of a backtracking scan."""
    return b'{"format": "partui-snapshot", "note": "' + b'\\"' * n_escapes


def test_an_unterminated_string_is_refused_in_linear_time(tmp_path, capsys):
    """200 KB of escaped quotes in a string that never ends: refused by `show` in one line
    well under a second; and eight times the text takes about eight times as long to refuse,
    not sixty-four."""
    from partui.profiles.files.checked_json import FileProblem, parse_bounded

    small = tmp_path / "small.json"
    small.write_bytes(unterminated(100_000))  # 200 KB
    run_cli(capsys, "show", small)  # imports out of the timing
    t0 = time.perf_counter()
    code, out, err = run_cli(capsys, "show", small)
    took = time.perf_counter() - t0
    assert code == 2 and err.count("\n") == 1 and "truncated" in err, err
    assert took < budget(1.0), took

    def once(path) -> float:
        t0 = time.perf_counter()
        with pytest.raises(FileProblem):
            parse_bounded(path, 64 * 2**20, 32, "snapshot", 6_000_000)
        return time.perf_counter() - t0

    small, large = tmp_path / "1mb.json", tmp_path / "8mb.json"
    small.write_bytes(unterminated(500_000))
    large.write_bytes(unterminated(4_000_000))
    # interleaved, best of seven each: a busy machine slows both alike. Linear gives about
    # 8, quadratic 64: the bound sits between them, with room for a loaded machine's noise.
    pairs = [(once(small), once(large)) for _ in range(7)]
    ratio = min(b for _, b in pairs) / min(a for a, _ in pairs)
    assert ratio < 32, ratio


@pytest.mark.parametrize(
    "command",
    [
        ("export", "{bad}", "--format", "csv"),
        ("export", "{bad}", "--format", "chrome"),
        ("compare", "{good}", "{bad}"),
        ("compare", "{bad}", "{good}", "--json"),
    ],
    ids=["export-csv", "export-chrome", "compare", "compare-json"],
)
def test_an_unterminated_string_is_refused_quickly_by_every_command(
    saved_snapshot, tmp_path, capsys, command
):
    """The 200 KB unterminated string of the quadratic parse, given to the other commands
    that read snapshots: each refuses it in one line naming the file, well under a second."""
    bad = tmp_path / "r.json"
    bad.write_bytes(unterminated(100_000))
    args = [a.format(bad=bad, good=saved_snapshot) for a in command]
    run_cli(capsys, *args)  # imports out of the timing
    t0 = time.perf_counter()
    code, out, err = run_cli(capsys, *args)
    took = time.perf_counter() - t0
    assert code == 2 and err.count("\n") == 1 and "r.json" in err and "truncated" in err, err
    assert out == "" and took < budget(1.0), took


def test_an_unterminated_string_in_the_book_is_noted_quickly_and_the_sweep_goes_on(
    tmp_path, monkeypatch, capsys
):
    """A baseline book cut inside a string of 200 KB of escaped quotes (a disk filled while
    it was written): read in well under a second as a broken book, noted once, and the sweep
    runs and rebuilds it."""
    from partui.profiles.store.baselines import BaselineBook

    book = tmp_path / "book.json"
    book.write_bytes(b'{"format": "partui-baselines", "version": 1, "note": "' + b'\\"' * 100_000)
    BaselineBook(book)  # imports out of the timing
    t0 = time.perf_counter()
    problem = BaselineBook(book).problem
    took = time.perf_counter() - t0
    assert problem is not None and "truncated" in problem and took < budget(1.0), (problem, took)
    monkeypatch.setenv("PARTUI_BASELINE_BOOK", str(book))
    code, out, err = run_cli(capsys, *TINY_SWEEP, "--out", tmp_path / "s.json")
    assert code == 0 and err.count("baseline book") == 1, err
    assert BaselineBook(book).problem is None


def test_duplicate_keys_are_refused_by_name(real, tmp_path, capsys):
    """JSON keeps the last of two equal keys without a word: partui names the key instead."""
    text = json.dumps(real)
    p = tmp_path / "dup.json"
    p.write_text(text.replace('"note": ', '"note": "first", "note": ', 1))
    code, out, err = run_cli(capsys, "show", p)
    assert code == 2 and err.count("\n") == 1 and '"note" appears twice' in err, err
    from partui.profiles.store.baselines import BaselineBook
    from partui.profiles.system.machine import info

    book = tmp_path / "book.json"
    entry = json.dumps(good_entry())
    book.write_text(
        book_text(info().fingerprint(), {}).replace("{}", "{" + f'"k": {entry}, "k": {entry}}}')
    )
    problem = BaselineBook(book).problem
    assert problem and '"k" appears twice' in problem


# 16 MiB each, written by the child: what a 64 MiB attack looks like, at a quarter of the size
CRAFTED_BIG = {
    "brackets": "b'[' * (8 * 2**20) + b']' * (8 * 2**20)",
    "empty objects": "b'[' + b'{},' * (16 * 2**20 // 3 - 1) + b'{}]'",
    "numbers": "b'[' + b'1,' * (8 * 2**20 - 1) + b'1]'",
    "unterminated": 'b\'{"format": "partui-snapshot", "note": "\' + b\'\\\\"\' * (8 * 2**20)',
}
MEMORY_SCRIPT = textwrap.dedent("""
    import re, sys
    from partui.tui.cli.main import main
    open(sys.argv[1], "wb").write(eval(sys.argv[2]))
    code = main(["show", sys.argv[1]])
    # this process's own peak (ru_maxrss would count the forking parent's before exec)
    print(code, int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read())[1]) // 1024)
""")


@pytest.mark.parametrize("kind", list(CRAFTED_BIG))
def test_crafted_files_are_refused_within_a_memory_bound(tmp_path, kind):
    """Peak memory of `show` on 16 MiB of brackets, empty objects, numbers or one
    unterminated string: the file a few times over plus the interpreter, never the
    gigabytes their parsed form would take."""
    proc = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(tmp_path / "big.json"), CRAFTED_BIG[kind]],
        capture_output=True,
        text=True,
        timeout=120,
    )
    code, peak_mb = map(int, proc.stdout.split())
    assert code == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert peak_mb < 200, (peak_mb, proc.stderr)


def test_running_out_of_memory_says_what_was_too_big(real, tmp_path, capsys, monkeypatch):
    """A MemoryError has no message of its own: the line names the file, or the command."""
    import partui.profiles.files.checked_json as checked_json

    p = tmp_path / "s.json"
    p.write_text(json.dumps(real))

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(checked_json.json, "loads", no_memory)
    code, out, err = run_cli(capsys, "show", p)
    assert code == 2 and err.count("\n") == 1, err
    assert "not enough memory to parse this snapshot" in err and str(p) in err
    monkeypatch.setattr("partui.tui.cli.commands.profiling._load", no_memory)
    code, out, err = run_cli(capsys, "show", p)
    assert code == 1 and err.count("\n") == 1, err
    assert "out of memory" in err and "partui show" in err and not err.rstrip().endswith(":")


@pytest.mark.parametrize(
    "text,depth",
    [
        ('{"a": "[[[{{{"}', 1),
        ('{"a": "x\\\\", "b": [[1]]}', 3),  # an escaped backslash, then the string ends
        ('{"a": "\\"[[[\\"", "b": []}', 2),  # escaped quotes keep the brackets inside
        ('["\\\\\\"[", [[]]]', 3),
        ("[]", 1),
        ('"just a string"', 0),
    ],
)
def test_the_prescan_skips_strings_as_json_does(text, depth):
    from partui.profiles.files.checked_json import json_shape

    json.loads(text)  # each is valid JSON
    assert json_shape(text.encode()).depth == depth


# ---- no escape sequence from a file, a folder name or the environment -------------------------

# OSC 52 (clipboard write), OSC 2 (title), clear screen and scrollback, C1 CSI, bidi override
HOSTILE = "\x1b]52;c;cHduZWQ=\x07\x1b]2;owned\x07\x1b[2J\x1b[3J\x9b2J\u202etxt.exe\u2066"
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def assert_safe(*texts):
    for text in texts:
        found = UNSAFE.search(text)
        assert found is None, (found.group(), text[max(0, found.start() - 60) : found.end() + 20])


def string_paths(node, prefix=()):
    if isinstance(node, str):
        yield prefix
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from string_paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from string_paths(v, prefix + (i,))


def set_at(d, path, value):
    for k in path[:-1]:
        d = d[k]
    d[path[-1]] = value


@pytest.fixture(scope="module")
def hostile_snapshot(real, tmp_path_factory):
    """The real snapshot with the hostile text in every string field the loader accepts it in
    (as the whole value, or after the value's first 10 characters), in a Dask record, in a
    memory-lab result's key and value, and in the keys of the machine's BLAS record."""
    folder = tmp_path_factory.mktemp("hostile")
    d = copy.deepcopy(real)
    d["runs"][0]["dask"] = {
        "scheduler": HOSTILE,
        "cluster": HOSTILE,
        "dashboard": HOSTILE,
        "workers": [{"name": HOSTILE, "address": HOSTILE, "pid": 7}],
        "notes": [HOSTILE],
    }
    d["memlab"] = [{"experiment": HOSTILE, HOSTILE: HOSTILE}]
    d["machine"]["blas"] = [{HOSTILE: HOSTILE}]
    p = folder / "hostile.json"
    taken = 0
    for path in list(string_paths(d)):
        old = d
        for k in path:
            old = old[k]
        for value in (HOSTILE, old[:10] + HOSTILE):
            set_at(d, path, value)
            p.write_text(json.dumps(d))
            try:
                load(p)
                taken += 1
                break
            except SnapshotError:
                set_at(d, path, old)
    p.write_text(json.dumps(d))
    load(p)
    assert taken >= 10 and HOSTILE in d["note"] and HOSTILE in d["machine"]["cpu_model"]
    return p


def test_no_escape_sequence_reaches_the_terminal_from_a_snapshot(hostile_snapshot, capsys):
    """show, compare (tables and JSON) and both exports to stdout: no control character and
    no bidi override of any field reaches stdout or stderr; the text is still there, escaped."""
    p = hostile_snapshot
    shown_text = ""
    for cmd in (
        ["show", p],
        ["show", p, "--json"],
        ["compare", p, p],
        ["compare", p, p, "--json"],
        ["export", p, "--format", "csv"],
        ["export", p, "--format", "chrome"],
    ):
        code, out, err = run_cli(capsys, *cmd)
        assert code == 0, (cmd, err)
        assert_safe(out, err)
        shown_text += out
    assert "\\x1b]52;c;" in shown_text and "\\u202etxt.exe" in shown_text


async def test_the_dashboard_draws_a_hostile_snapshot_escaped(hostile_snapshot, tmp_path):
    """`partui FILE` with the hostile text in every field: each screen the snapshot reaches
    (the profile tab with its runs, the lab tab with its results, the snapshot browser, a
    second view of it as the profile tab's replay) is drawn with no control character and
    no bidi override."""
    import shutil

    from partui.profiles.service.engine import EngineThread
    from partui.tui.dashboard.app import PartuiApp

    folder = tmp_path / "snaps"
    folder.mkdir()
    shutil.copy(hostile_snapshot, folder / "hostile.json")
    app = PartuiApp(
        snapshot_dir=folder,
        open_snapshot=folder / "hostile.json",
        engine_factory=EngineThread,
        live_loop=False,
        machine=MachineInfo(cpu_model="x"),
    )
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        shots = [app.export_screenshot()]
        await pilot.press("m")  # the lab tab: the snapshot's memory-lab results
        await pilot.pause()
        shots.append(app.export_screenshot())
        await pilot.press("m", "o")  # the browser lists the snapshot with its note
        await pilot.pause()
        shots.append(app.export_screenshot())
        await pilot.press("escape")
    for svg in shots:
        assert_safe(svg)
    assert "\\x1b]52;c;" in shots[-1]  # the note is drawn in the browser, escaped


def test_the_dashboard_timeline_escapes_a_snapshots_dask_fields(hostile_snapshot):
    """The timeline's note names the Dask scheduler from the file: it is drawn escaped."""
    from partui.tui.dashboard.charts.timeline import timeline_lines, view_of_result

    run = load(hostile_snapshot).runs[0]
    text = timeline_lines(view_of_result(run, 1, None), 400, 30).plain
    assert "Dask \\x1b]52;c;" in text
    assert_safe(text)


def test_no_escape_sequence_reaches_the_terminal_from_the_book(tmp_path, monkeypatch, capsys):
    """A book whose `measured` clears the screen and scrollback: the sweep's report, the
    snapshot it saves (its baseline names the book's date) and that snapshot's CSV export
    show it escaped; the book's note about a broken book comes once per sweep."""
    from partui.profiles.system.machine import info

    entry = {**good_entry(), "median_ms": 1e-9, "measured": "\x1b[2J\x1b[3J\u202e"}  # it wins
    book = tmp_path / "book.json"
    book.write_text(book_text(info().fingerprint(), {"gelu3/vectorized/b2": entry}))
    monkeypatch.setenv("PARTUI_BASELINE_BOOK", str(book))
    monkeypatch.setenv("PARTUI_SNAPSHOT_DIR", str(tmp_path / ("snaps" + HOSTILE)))
    (tmp_path / ("snaps" + HOSTILE)).mkdir()
    code, out, err = run_cli(capsys, *TINY_SWEEP)
    assert code == 0, err
    assert_safe(out, err)
    assert "book (\\x1b[2J\\x1b[3J\\u202e)" in out
    (saved,) = (tmp_path / ("snaps" + HOSTILE)).iterdir()
    code, out, err = run_cli(capsys, "export", saved, "--format", "csv")
    assert code == 0 and "\\x1b[2J" in out
    assert_safe(out, err)
    book.write_text(book_text(info().fingerprint(), [HOSTILE]))  # broken: noted, rebuilt
    code, out, err = run_cli(capsys, *TINY_SWEEP, "--out", tmp_path / "s.json")
    assert code == 0 and err.count("baseline book") == 1, err
    assert_safe(out, err)


def test_no_escape_sequence_reaches_the_terminal_from_a_data_folder(tmp_path, capsys):
    """`train --data DIR` names the folder on stderr and in its report: escaped in both."""
    import numpy as np

    from partui.profiles.train import datasets

    folder = tmp_path / ("emnist" + HOSTILE)
    folder.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 64), ("test", 16)):
        datasets.write_idx(
            folder / f"emnist-letters-{split}-images-idx3-ubyte",
            rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
        )
        datasets.write_idx(
            folder / f"emnist-letters-{split}-labels-idx1-ubyte", rng.integers(1, 27, n)
        )
    code, out, err = run_cli(
        capsys,
        *["train", "--data", folder, "--epochs", "1", "--train-size", "64", "--test-size", "16"],
        *["--batch", "32", "--out", tmp_path / "t.json"],
    )
    assert code == 0, err
    assert_safe(out, err)
    assert "emnist\\x1b]52;c;" in out and "emnist\\x1b]52;c;" in err
    (folder / "emnist-letters-test-labels-idx1-ubyte").unlink()  # an error names it too
    code, out, err = run_cli(capsys, "train", "--data", folder, "--out", tmp_path / "u.json")
    assert code == 2 and "emnist\\x1b]52;c;" in err
    assert_safe(out, err)
