"""partui sweep / show / export / compare from the command line."""

import json
import os
import subprocess
import sys

import pytest


def partui(*args, env_dir=None):
    env = dict(os.environ)
    if env_dir is not None:
        env["PARTUI_SNAPSHOT_DIR"] = str(env_dir)
        env["PARTUI_BASELINE_BOOK"] = str(env_dir / "book" / "baselines.json")
    return subprocess.run(
        [sys.executable, "-m", "partui.tui.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    d = tmp_path_factory.mktemp("sweep")
    out = d / "s.json"
    p = partui(
        "sweep",
        "--layer",
        "conv2",
        "--strategies",
        "batch,spatial",
        "--executors",
        "threads,inline",
        "--workers",
        "1,2",
        "--batch",
        "4",
        "--repeat",
        "2",
        "--warmup",
        "0",
        "--out",
        out,
        "--note",
        "a test",
        env_dir=d,
    )
    return d, out, p


def test_sweep_prints_table_progress_and_saves(swept):
    d, out, p = swept
    assert p.returncode == 0, p.stderr
    assert "[6/6]" in p.stderr and "not applicable, skipped" in p.stderr
    assert "vs baseline" in p.stdout and "conv2 spatial/vectorized/threads w=2 b=4" in p.stdout
    assert "baselines (best single-worker" in p.stdout and "Karp-Flatt" in p.stdout
    data = json.loads(out.read_text())
    assert len(data["runs"]) == 6 and data["note"] == "a test" and data["baseline"]
    assert (d / "book" / "baselines.json").exists()


def test_show_export_compare(swept, tmp_path):
    d, out, _ = swept
    p = partui("show", out)
    assert p.returncode == 0 and "a test" in p.stdout and "vs 1 worker" in p.stdout
    trace = tmp_path / "t.json"
    p = partui("export", out, "--format", "chrome", "-o", trace)
    assert p.returncode == 0, p.stderr
    events = json.loads(trace.read_text())["traceEvents"]
    assert sum(e["ph"] == "X" and e["cat"] != "repeat" for e in events) == sum(
        len(r["spans"]) for r in json.loads(out.read_text())["runs"]
    )
    p = partui("export", out, "--format", "csv")
    assert p.returncode == 0 and len(p.stdout.strip().splitlines()) == 7
    p = partui("compare", out, out)
    assert p.returncode == 0 and "same machine" in p.stdout
    assert p.stdout.count("too few repeats (2 and 2, need 5)") == 6  # --repeat 2: no verdict
    other = tmp_path / "b.json"
    other.write_bytes(out.read_bytes())
    p = partui("compare", out, other)
    assert p.returncode == 0
    assert p.stdout.splitlines()[:2] == [f"A  {out}", f"B  {other}"]  # which file is which
    both = json.loads(partui("compare", out, other, "--json").stdout)
    assert (both["a_file"], both["b_file"]) == (str(out), str(other))


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"format": "partui-snapshot", "schema_version": 1, "runs": [', "truncated"),
        ('{"traceEvents": []}', "not a partui snapshot"),
        ('{"format": "partui-snapshot", "schema_version": 5}', "newer than this partui"),
    ],
)
def test_bad_files_exit_2_with_one_line_and_overwrite_nothing(tmp_path, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    keep = tmp_path / "keep.csv"
    keep.write_text("precious\n")
    for args in (
        ["show", bad],
        ["export", bad, "--format", "csv", "-o", keep],
        ["compare", bad, bad],
    ):
        p = partui(*args)
        assert p.returncode == 2, (args, p.stderr)
        assert message in p.stderr and len(p.stderr.strip().splitlines()) == 1
        assert "Traceback" not in p.stderr
    assert keep.read_text() == "precious\n" and bad.read_text() == content


def test_sweep_bad_lists_exit_2(tmp_path):
    for args, message in (
        (["--workers", "1,zero"], "integers"),
        (["--executors", "gpu"], "unknown executor 'gpu'"),
        (["--strategies", "pipeline"], "no applicable configuration"),
    ):
        p = partui("sweep", "--layer", "conv2", *args, env_dir=tmp_path)
        assert p.returncode == 2 and message in p.stderr, p.stderr


def strict_json(text):
    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_sweep_show_compare_as_json(swept, tmp_path):
    d, out, _ = swept
    p = partui(
        "sweep",
        "--layer",
        "pool2",
        "--strategies",
        "batch",
        "--executors",
        "threads",
        "--workers",
        "1,2",
        "--batch",
        "4",
        "--repeat",
        "2",
        "--warmup",
        "0",
        "--out",
        tmp_path / "j.json",
        "--json",
        env_dir=d,
    )
    assert p.returncode == 0, p.stderr
    data = strict_json(p.stdout)  # stdout is the JSON object and nothing else
    assert data["snapshot"] == str(tmp_path / "j.json") and data["failed"] == []
    assert [r["config"]["workers"] for r in data["runs"]] == [1, 2]
    assert all(r["ok"] and r["median"] > 0 for r in data["runs"])
    assert data["runs"][0]["speedup_1w"] == 1.0
    # --repeat 2: no verdict against 1 worker, and no fit from the two worker counts
    assert data["runs"][0]["vs_1w"] is None
    assert data["runs"][1]["vs_1w"]["verdict"] == "too few repeats"
    assert data["runs"][1]["vs_1w"]["significant"] is False
    (series,) = data["series"]
    assert series["amdahl"] is None and "too few repeats" in series["amdahl_withheld"]

    shown = strict_json(partui("show", out, "--json").stdout)
    saved = json.loads(out.read_text())
    assert shown["note"] == "a test" and len(shown["runs"]) == len(saved["runs"])
    assert [r["median"] for r in shown["runs"]] == [r["median_ms"] for r in saved["runs"]]

    both = strict_json(partui("compare", out, out, "--json").stdout)
    assert both["machine_differences"] == [] and both["only_in_a"] == 0
    assert len(both["configurations"]) == len(saved["runs"])
    assert all(
        c["ratio_b_over_a"] == c["ratio"] == 1.0
        and c["verdict"] == "too few repeats"
        and c["significant"] is False
        and c["p_value"] == 1.0
        for c in both["configurations"]
    )


def test_a_sweep_whose_snapshot_cannot_be_written_still_prints_its_figures(
    tmp_path, monkeypatch, capsys
):
    """A full disk at the end of a sweep: the table is printed, stderr says the snapshot was
    not saved and that the figures shown are all there is, exit 2."""
    import errno

    from partui.profiles.store import snapshot
    from partui.tui.cli.main import main

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(snapshot, "save", full)
    args = ["sweep", "--layer", "pool3", "--strategies", "none", "--executors", "inline"]
    code = main([*args, "--workers", "1", "--batch", "2", "--repeat", "2", "--warmup", "0"])
    out, err = capsys.readouterr()
    assert code == 2
    assert "pool3 none/vectorized/inline w=1 b=2" in out and "snapshot saved" not in out
    assert "snapshot not saved" in err and "No space left on device" in err
    assert "the figures above are all there is" in err
