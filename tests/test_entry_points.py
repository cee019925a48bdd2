"""How partui starts: `partui --version`, `python -m partui`, --help without the heavy
imports, --debug tracebacks, and help texts that say each default once."""

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest

from partui.tui.cli import main as cli

HEAVY = (
    "numpy",
    "numba",
    "textual",
    "textual_plotext",
    "psutil",
    "threadpoolctl",
    "dask",
    "distributed",
)


def python(*args, cwd=None, timeout=60):
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd
    )


def test_version_from_the_command_and_from_python_m(tmp_path):
    expected = f"partui {importlib.metadata.version('partui')}"
    # from a folder outside the source tree, as an installed user runs it
    for args in (["-m", "partui", "--version"], ["-m", "partui.tui.cli.main", "--version"]):
        proc = python(*args, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == expected


def test_python_m_partui_is_the_partui_command(tmp_path):
    proc = python("-m", "partui", "run", "--layer", "conv9", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("partui run: error:") and "conv9" in proc.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["list"],
        ["--version"],
        ["run", "--help"],
        ["sweep", "--help"],
        ["list", "--json"],
    ],
)
def test_help_and_list_import_no_heavy_module(argv):
    assert loaded_after(argv, HEAVY) == "LOADED []"


def loaded_after(argv: list[str], modules: tuple[str, ...]) -> str:
    """`partui ARGV` in a fresh interpreter: which of `modules` it imported."""
    code = (
        "import sys\nfrom partui.tui.cli.main import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        f"print('LOADED', sorted(m for m in {modules!r} if m in sys.modules), file=sys.stderr)"
    )
    stderr = python("-c", code).stderr
    return next((line for line in stderr.splitlines() if line.startswith("LOADED")), stderr[-500:])


# standard-library modules that cost `partui --help` a tenth of its start-up or more each
# (pathlib is left out: an editable install's import hook loads it before partui does)
SLOW_STDLIB = ("dataclasses", "inspect", "typing", "json", "shutil")


@pytest.mark.parametrize("argv", [["--help"], ["list"], ["sweep", "--help"]])
def test_help_and_list_load_no_slow_standard_module(argv):
    assert loaded_after(argv, SLOW_STDLIB) == "LOADED []"


def test_the_dashboard_starts_without_numpy_or_numba():
    """The first frame waits for the dashboard's own imports only: numpy (and the BLAS
    figures that need it) follow the first frame, numba lives in the engine process."""
    code = (
        "import sys\nimport partui.tui.dashboard.app\n"
        "from partui.profiles.system.machine import host_info\n"
        "m = host_info()\n"
        "print('LOADED', sorted(x for x in ('numpy', 'numba') if x in sys.modules),"
        " m.blas is not None, file=sys.stderr)"
    )
    proc = python("-c", code)
    assert "LOADED [] False" in proc.stderr, proc.stderr[-500:]


def test_dashboard_options_are_in_partui_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for flag in (
        "--live",
        "--snapshot-dir",
        "--layer",
        "--strategy",
        "--workers",
        "--version",
        "--debug",
        "PARTUI_SNAPSHOT_DIR",
        "PARTUI_DEBUG",
    ):
        assert flag in out, flag


@pytest.mark.parametrize(
    "command", ["run", "sweep", "show", "export", "compare", "bench", "demo", "list", "info"]
)
def test_each_default_is_said_once(command, capsys):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())  # undo the wrapping
    assert "(default: None)" not in text and "(default: False)" not in text
    assert not re.search(r"default[^()]*\)\s*\(default", text), text


def _broken_list(args):
    raise RuntimeError("a bug deep inside")


def test_unexpected_error_is_one_line_unless_debug(monkeypatch, capsys):
    from partui.tui.cli.commands import listing

    monkeypatch.setattr(listing, "cmd_list", _broken_list)
    monkeypatch.setenv("PARTUI_DEBUG", "0")
    assert cli.main(["list"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "RuntimeError: a bug deep inside" in err and "--debug" in err

    for argv, env in ((["--debug", "list"], "0"), (["list", "--debug"], "0"), (["list"], "1")):
        monkeypatch.setenv("PARTUI_DEBUG", env)
        assert cli.main(argv) == 1
        err = capsys.readouterr().err
        assert "Traceback" in err and "_broken_list" in err, argv
        assert err.strip().splitlines()[-1] == "partui: error: RuntimeError: a bug deep inside"


def test_bad_input_with_debug_shows_where_it_was_refused(monkeypatch, capsys):
    monkeypatch.setenv("PARTUI_DEBUG", "0")
    assert cli.main(["--debug", "run", "--layer", "conv2", "--workers", "999"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "ConfigError" in err


def test_snapshot_dir_flag_wins_over_the_variable_and_the_help_says_so(
    tmp_path, monkeypatch, capsys
):
    from partui.tui.cli import dashboard as dashboard_cli
    from partui.tui.dashboard import app

    seen = {}

    class FakeApp:
        return_code, crash_log = 0, None

        def __init__(self, snapshot_dir, **kwargs):
            seen["folder"] = snapshot_dir

        def run(self):
            pass

    monkeypatch.setattr(app, "PartuiApp", FakeApp)
    monkeypatch.setenv("PARTUI_SNAPSHOT_DIR", str(tmp_path / "from-variable"))
    assert dashboard_cli.main(["--snapshot-dir", str(tmp_path / "from-flag")]) == 0
    assert seen["folder"] == tmp_path / "from-flag"
    monkeypatch.setenv("PARTUI_SNAPSHOT_DIR", str(tmp_path / "from-variable"))
    assert dashboard_cli.main([]) == 0
    assert seen["folder"] == tmp_path / "from-variable"
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert (
        "PARTUI_SNAPSHOT_DIR where snapshots and exports go unless --snapshot-dir is given "
        "(it wins)" in text
    )
    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
    assert "Snapshots go to `--snapshot-dir DIR` if given, else `$PARTUI_SNAPSHOT_DIR`" in readme
    assert "`--snapshot-dir` wins over it" in readme


def _help(capsys, *argv) -> str:
    with pytest.raises(SystemExit):
        cli.main([*argv, "--help"])
    return " ".join(capsys.readouterr().out.split())  # undo the wrapping


def test_help_texts_name_the_real_flags_and_keys(capsys):
    sweep = _help(capsys, "sweep")
    assert "--executors with dask among them: the address" in sweep
    assert "--executor dask" not in sweep
    assert "--executor dask: the address" in _help(capsys, "run")
    demo = _help(capsys, "demo")
    assert "summary, explanation" in demo and "summary, text" not in demo
    assert "which file is A and which is B" in _help(capsys, "compare")
    argv = ["sweep", "--layer", "conv2", "--executors", "threads", "--scheduler", "x"]
    assert cli.main(argv) == 2
    assert "--scheduler applies to --executors with dask among them" in capsys.readouterr().err


def test_a_snapshot_opened_in_the_dashboard_is_read_once(saved_snapshot, tmp_path, monkeypatch):
    """`partui FILE`: the command line reads and checks the file, and the dashboard views
    what it read; a large snapshot is not parsed a second time."""
    from partui.profiles.store import snapshot
    from partui.tui.cli import dashboard as dashboard_cli
    from partui.tui.dashboard import app
    from partui.tui.dashboard.snapshots import model_from_snapshot

    reads = []
    real_load = snapshot.load
    monkeypatch.setattr(snapshot, "load", lambda path: reads.append(path) or real_load(path))

    class FakeApp:
        return_code, crash_log = 0, None

        def __init__(self, snapshot_dir, open_snapshot=None, **kwargs):
            self.path = open_snapshot

        def run(self):  # what the app does as it mounts with a snapshot to open
            model = model_from_snapshot(self.path, 2, self.opened)
            assert len(model.runs) == 2

    monkeypatch.setattr(app, "PartuiApp", FakeApp)
    assert dashboard_cli.main(["--snapshot-dir", str(tmp_path), str(saved_snapshot)]) == 0
    assert len(reads) == 1
