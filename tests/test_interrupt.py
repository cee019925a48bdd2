"""Ctrl+C during a long `loops` run: exit 130 within a second, one line, no process left behind."""

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from waiting import budget, wait_until

LONG_RUN = ["run", "--layer", "conv2", "--batch", "64", "--kernel", "loops", "--repeat", "3"]


def start(executor, new_session=False):
    workers = "1" if executor == "inline" else "2"
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "partui.tui.cli.main",
            *LONG_RUN,
            "--executor",
            executor,
            "--workers",
            workers,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=new_session,
        # BLAS's own threads kept out, so that a second thread means the run is under way
        # (the loops kernel runs no BLAS; partui's workers run it on one thread anyway)
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )


def descendants(proc, seen):
    try:
        for child in psutil.Process(proc.pid).children(recursive=True):
            seen.setdefault(child.pid, child)
    except psutil.Error:  # gone (or a zombie) already
        pass
    return seen


def threads(proc) -> int:
    try:
        return psutil.Process(proc.pid).num_threads()
    except psutil.Error:
        return 0


def wait_mid_run(proc, executor):
    """Until the run is under way: the engine has started its CPU sampler (or a worker), a
    second thread in partui, and for processes the pool's workers exist. Imports take from
    a fraction of a second to several on a loaded machine: a fixed wait could land in them.
    Returns the descendants seen."""
    seen: dict = {}

    def under_way():
        if proc.poll() is not None:
            pytest.fail(f"partui ended before Ctrl+C ({proc.returncode}): make the run longer")
        descendants(proc, seen)
        return threads(proc) >= 2 and (executor != "processes" or len(seen) >= 2)

    wait_until(under_way, 30, message="the run never got under way")
    return seen


def interrupt_and_check(proc, seen, send):
    t0 = time.monotonic()
    send()
    try:
        proc.wait(timeout=budget(10))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("partui did not stop within 10 s of Ctrl+C")
    elapsed = time.monotonic() - t0
    out, err = proc.communicate()
    assert proc.returncode == 130, (proc.returncode, err)
    assert err == "partui: interrupted\n", err
    assert out == ""
    limit = budget(1.0)
    assert elapsed < limit, f"stopped {elapsed:.2f} s after Ctrl+C (limit {limit:.2f} s)"
    # Worker processes are stopped before partui exits; the multiprocessing helpers follow
    # as soon as their pipe to partui closes.
    wait_until(
        lambda: not any(running(p) for p in seen.values()),
        1.0,
        message=lambda: f"still running: {[p.pid for p in seen.values() if running(p)]}",
    )


def running(p):
    """Still running; a zombie has exited (this container's init may be slow to reap it)."""
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@pytest.mark.parametrize("executor", ["threads", "processes", "inline"])
def test_sigint_mid_run(executor):
    proc = start(executor)
    seen = wait_mid_run(proc, executor)
    assert proc.poll() is None, "the run ended before Ctrl+C: make it longer"
    descendants(proc, seen)
    if executor == "processes":
        assert len(seen) >= 2, "no worker processes seen"
    else:
        assert not seen
    interrupt_and_check(proc, seen, lambda: proc.send_signal(signal.SIGINT))


@pytest.mark.parametrize("delay", [0.0, 0.02, 0.05, 0.1])
def test_terminal_ctrl_c_while_the_pool_starts(delay):
    """A terminal sends SIGINT to the whole process group, children included. Hit the pool's
    start-up (the fork server loads numpy for ~0.2 s): no child may print a traceback."""
    proc = start("processes", new_session=True)
    seen: dict = {}
    wait_until(
        lambda: descendants(proc, seen) or proc.poll() is not None,
        20,
        interval=0.002,
        message="no child process appeared",
    )
    assert seen, f"partui ended ({proc.returncode}) before a child process appeared"
    time.sleep(delay)  # the moment of the start-up hit: a parameter, not a wait for a state
    interrupt_and_check(proc, seen, lambda: os.killpg(proc.pid, signal.SIGINT))


def test_terminal_ctrl_c_mid_run():
    proc = start("processes", new_session=True)
    seen = wait_mid_run(proc, "processes")
    assert proc.poll() is None and len(seen) >= 2
    interrupt_and_check(proc, seen, lambda: os.killpg(proc.pid, signal.SIGINT))


def test_the_cli_module_imports_nothing_heavy():
    """A Ctrl+C while numpy loads must reach main's handler: the module itself stays light."""
    code = (
        "import sys, partui.tui.cli.main; "
        "heavy = ['numpy', 'partui.profiles.run.engine', 'textual']; "
        "heavy = [m for m in heavy if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_ctrl_c_inside_a_string_exec_still_exits_130_under_python_m(tmp_path):
    """Ctrl+C that lands in a string exec/eval (collections.namedtuple's, while a module such
    as psutil loads) and is caught by partui exits 130 with one line under `python -m`: CPython
    marks it unhandled and, unless the mark is cleared, ends the process by SIGINT (-2)."""
    (tmp_path / "ctrl_c_in_exec.py").write_text(
        "import sys\n"
        "from partui.tui.cli import main as cli\n"
        "try:\n"
        "    exec('raise KeyboardInterrupt', {})\n"
        "except KeyboardInterrupt as exc:\n"
        "    sys.exit(cli._stopped(exc))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "ctrl_c_in_exec"], cwd=tmp_path, capture_output=True, text=True
    )
    assert (proc.returncode, proc.stderr) == (130, "partui: interrupted\n")


def _signal_at_pause(code: str, said: str, signum: int) -> subprocess.CompletedProcess:
    """Run `code` (a partui start with a pause made on purpose), wait for the line it says as
    the pause begins, send `signum`, and return how it ended."""
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline() == said
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


SLOW_IMPORT = """
import builtins, sys, time
real = builtins.__import__
def slow(name, *args, **kwargs):
    if name == "partui.tui.cli.parsing" and "partui.tui.cli.parsing" not in sys.modules:
        print("importing", flush=True)
        time.sleep(5)
    return real(name, *args, **kwargs)
builtins.__import__ = slow
sys.argv = ["partui", "list"]
from partui.tui.cli.entry import main
sys.exit(main())
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_while_partui_imports_is_one_line_and_128_plus_its_number(signum):
    """A signal that lands while the command line's modules are still being imported (here
    an import made slow on purpose) ends `partui` with one line, never a traceback."""
    ended = _signal_at_pause(SLOW_IMPORT, "importing\n", signum)
    name = "interrupted" if signum == signal.SIGINT else f"stopped by {signum.name}"
    assert (ended.returncode, ended.stderr) == (128 + signum, f"partui: {name}\n")


SLOW_HAND_OVER = """
import sys, time
import partui.tui.cli.main as cli
real = cli.main
def slow_start(argv=None):
    print("handed over", flush=True)
    time.sleep(5)
    return real(argv)
cli.main = slow_start
sys.argv = ["partui", "list"]
from partui.tui.cli.entry import main
sys.exit(main())
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_between_the_imports_and_mains_handlers_is_one_line(signum):
    """TERM or HUP after the start-up handler has done its work and before main has put its
    own in place (a pause made on purpose) still ends `partui` with one line: the start-up
    handler stays until main replaces it, so the signal's default never acts in between."""
    ended = _signal_at_pause(SLOW_HAND_OVER, "handed over\n", signum)
    assert (ended.returncode, ended.stderr) == (128 + signum, f"partui: stopped by {signum.name}\n")


def test_a_hang_up_ignored_at_start_stays_ignored_through_the_start(tmp_path):
    """Under nohup (SIGHUP ignored) a hang-up while partui starts does not end it."""
    code = SLOW_HAND_OVER.replace(
        "import sys, time", "import signal, sys, time\nsignal.signal(signal.SIGHUP, signal.SIG_IGN)"
    )
    ended = _signal_at_pause(code, "handed over\n", signal.SIGHUP)
    assert ended.returncode == 0, ended.stderr
    assert "conv2" in ended.stdout  # `partui list` ran to its end
