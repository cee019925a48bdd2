"""Nothing partui writes can hurt: special files are never written through, names never
clash, temporary files cannot be hijacked, CSV cells are never formulas and exports follow
the umask. Every special file is made inside the test's own temporary folder."""

import json
import os
import stat
import subprocess
import sys
import threading

import pytest
from cli_fixtures import TINY_SWEEP

from partui.profiles.files import safe_files
from partui.profiles.files.safe_files import WriteError, write_text
from partui.profiles.store.snapshot import Snapshot, default_snapshot_path, save
from partui.profiles.system.machine import MachineInfo

CLI = [sys.executable, "-m", "partui.tui.cli.main"]


class Done:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def partui(capsys):
    """`partui ARGS` in this process (argument checks need no fresh interpreter)."""
    from partui.tui.cli.main import main

    def call(*args):
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        return Done(code, out, err)

    return call


def special_targets(tmp_path):
    """A FIFO, a symlink to a file, a dangling symlink, a folder, a socket: all in tmp_path."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    link = tmp_path / "link.json"
    link.symlink_to(victim)
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "nowhere.json")
    folder = tmp_path / "folder"
    folder.mkdir()
    import socket

    sock_path = tmp_path / "sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    sock.close()
    return {
        "fifo": fifo,
        "link": link,
        "dangling": dangling,
        "folder": folder,
        "socket": sock_path,
    }, victim


def unchanged(targets, victim):
    assert stat.S_ISFIFO(os.lstat(targets["fifo"]).st_mode)
    assert stat.S_ISSOCK(os.lstat(targets["socket"]).st_mode)
    assert os.path.islink(targets["link"]) and os.path.islink(targets["dangling"])
    assert not (targets["dangling"].parent / "nowhere.json").exists()
    assert victim.read_text() == "keep me"


def no_temp_files(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_writer_refuses_every_special_target(tmp_path):
    """Library level: a FIFO, a symlink, a folder or a socket is never replaced."""
    targets, victim = special_targets(tmp_path)
    for kind, path in targets.items():
        with pytest.raises(WriteError) as err:
            write_text(path, "data", overwrite=True)
        assert str(path) in str(err.value) and "\n" not in str(err.value), kind
    unchanged(targets, victim)
    assert no_temp_files(tmp_path) == []


def test_character_device_target_refused(tmp_path):
    """A character device is refused from its mode alone: the check never opens it."""
    target = tmp_path / "dev"
    try:
        os.mknod(target, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # needs root; made here only
    except PermissionError:
        pytest.skip("making a device node needs root")
    with pytest.raises(WriteError, match="character device"):
        write_text(target, "data", overwrite=True)
    assert stat.S_ISCHR(os.lstat(target).st_mode)


@pytest.mark.parametrize("kind", ["fifo", "link", "dangling", "socket"])
def test_export_refuses_special_output(tmp_path, kind, saved_snapshot, partui):
    """Command line: `partui export -o` onto a special file: exit 2, one line."""
    targets, victim = special_targets(tmp_path)
    proc = partui("export", saved_snapshot, "--format", "csv", "-o", targets[kind], "--force")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "will not write" in proc.stderr
    unchanged(targets, victim)


def test_sweep_refuses_fifo_out_before_running(tmp_path, partui):
    targets, victim = special_targets(tmp_path)
    proc = partui(
        "sweep",
        "--layer",
        "gelu3",
        "--strategies",
        "batch",
        "--executors",
        "inline",
        "--workers",
        "1",
        "--batch",
        "2",
        "--repeat",
        "1",
        "--out",
        targets["fifo"],
    )
    assert proc.returncode == 2 and "FIFO" in proc.stderr and "sweep:" not in proc.stderr
    unchanged(targets, victim)


def test_existing_file_needs_force(tmp_path, saved_snapshot, partui):
    out = tmp_path / "out.csv"
    out.write_text("mine")
    proc = partui("export", saved_snapshot, "--format", "csv", "-o", out)
    assert proc.returncode == 2 and "--force" in proc.stderr
    assert out.read_text() == "mine"
    proc = partui("export", saved_snapshot, "--format", "csv", "-o", out, "--force")
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().startswith("layer,")


def test_exports_keep_the_umask_permissions(tmp_path, saved_snapshot):
    """An export follows the umask (0644 under umask 022), as any file a user makes does."""
    out = tmp_path / "t.json"
    proc = subprocess.run(
        [
            "sh",
            "-c",
            'umask 022 && exec "$@"',
            "sh",
            *CLI,
            "export",
            str(saved_snapshot),
            "--format",
            "chrome",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o644


def test_planted_symlink_at_a_temp_name_is_not_followed(tmp_path, monkeypatch):
    """The temporary name is unpredictable and made with O_EXCL|O_NOFOLLOW; even a
    symlink planted at the exact name it will use is not written through."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    monkeypatch.setattr(safe_files.secrets, "token_hex", lambda n: "0123456789abcdef")
    planted = tmp_path / ".out.json.0123456789abcdef.tmp"
    planted.symlink_to(victim)
    with pytest.raises(WriteError):
        write_text(tmp_path / "out.json", "data")
    assert victim.read_text() == "keep me" and not (tmp_path / "out.json").exists()
    # ...nor is one planted at the predictable name `.NAME.tmp` beside the target
    monkeypatch.undo()
    (tmp_path / ".partui.trace.json.tmp").symlink_to(victim)
    write_text(tmp_path / "partui.trace.json", "{}")
    assert victim.read_text() == "keep me"


def test_failed_write_leaves_no_temp_file(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safe_files.os, "fsync", full)
    with pytest.raises(WriteError, match="No space left"):
        write_text(tmp_path / "x.json", "data")
    assert list(tmp_path.iterdir()) == []


def test_default_names_unique_in_one_second_and_across_threads(tmp_path):
    """Library: twenty saves of the same default name keep twenty files."""
    base = default_snapshot_path(tmp_path, stem="sweep")
    written = []
    lock = threading.Lock()

    def one(i):
        p = save(Snapshot(runs=[], note=f"n{i}", machine=MachineInfo()), base, unique=True)
        with lock:
            written.append(p)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(written)) == 20
    notes = sorted(json.loads(p.read_text())["note"] for p in written)
    assert notes == sorted(f"n{i}" for i in range(20))


def test_two_sweeps_in_the_same_second_keep_both(tmp_path):
    """Command line: two sweeps at once in one folder keep two snapshots."""
    env = {**os.environ, "PARTUI_SNAPSHOT_DIR": str(tmp_path)}
    cmd = [*CLI, *TINY_SWEEP, "--no-book"]
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    saved = {
        line.split("snapshot saved to ")[1]
        for out, _ in outs
        for line in out.splitlines()
        if "snapshot saved to" in line
    }
    assert len(saved) == 2
    assert len(list(tmp_path.glob("sweep-*.json"))) == 2


def test_csv_cells_are_not_formulas(saved_snapshot, monkeypatch):
    """A text cell that starts with = + - @ is not run by a spreadsheet."""
    import csv
    import io

    from partui.profiles.store import export
    from partui.profiles.store.baselines import Baseline
    from partui.profiles.store.snapshot import load

    for text in ("=1+1", "+A1", "-cmd", "@SUM(A1)", "\t=1"):
        assert export._num(text) == "'" + text
    assert export._num(-0.5) == "-0.5" and export._num("batch") == "batch"
    monkeypatch.setattr(Baseline, "label", lambda self: '=HYPERLINK("http://x","click")')
    rows = list(csv.DictReader(io.StringIO(export.csv_text(load(saved_snapshot)))))
    assert rows and all(r["baseline"] == '\'=HYPERLINK("http://x","click")' for r in rows)
    for r in rows:
        for v in r.values():
            if v[:1] in "=+-@":
                float(v)  # only numbers may start so


@pytest.mark.parametrize(
    "args,needle",
    [
        (["sweep", "--layer", "conv2", "--strategies", ""], "--strategies"),
        (["sweep", "--layer", "conv2", "--workers", ""], "--workers"),
        (["bench", "--layers", ""], "--layers"),
        (["bench", "--workers", ""], "--workers"),
        (["run", "--layer", "gelu3", "--save-arrays", ""], "--save-arrays"),
        (["export", "x.json", "--format", "csv", "-o", ""], "-o"),
        (["show", ""], "FILE"),
    ],
)
def test_empty_values_are_errors(args, needle, partui):
    """An empty value is an error (exit 2), not the same as leaving it out."""
    proc = partui(*args)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr and "empty" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_bad_arguments_are_named_not_echoed_and_need_ascii_digits(partui):
    """An unknown strategy is named, a 100 KB value is not echoed whole, and Arabic-Indic
    digits are refused where an integer is asked for."""
    proc = partui("sweep", "--layer", "conv2", "--strategies", "nope")
    assert proc.returncode == 2 and "unknown strategy 'nope'" in proc.stderr
    huge = "x" * 100_000
    proc = partui("sweep", "--layer", "conv2", "--strategies", huge)
    assert proc.returncode == 2 and len(proc.stderr) < 400, len(proc.stderr)
    proc = partui("run", "--layer", "gelu3", "--batch", huge)
    assert proc.returncode == 2 and len(proc.stderr) < 400
    for digits in ("\u0663", "\u0661\u0662"):  # Arabic-Indic 3, 12
        proc = partui("run", "--layer", "gelu3", "--batch", digits)
        assert proc.returncode == 2 and "integer" in proc.stderr, proc.stderr
        proc = partui("sweep", "--layer", "gelu3", "--workers", digits)
        assert proc.returncode == 2 and "integers" in proc.stderr, proc.stderr


def test_save_arrays_refuses_a_symlinked_array(tmp_path, partui):
    out = tmp_path / "arrays"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (out / "output.npy").symlink_to(victim)
    proc = partui(
        "run",
        "--layer",
        "gelu3",
        "--batch",
        "2",
        "--repeat",
        "1",
        "--executor",
        "inline",
        "--workers",
        "1",
        "--save-arrays",
        out,
        "--force",
    )
    assert proc.returncode == 2 and "symbolic link" in proc.stderr
    assert victim.read_text() == "keep me"
