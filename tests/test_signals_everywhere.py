"""INT, TERM and HUP at several moments of every command that works for a while: each ends
with partui's one line and 128 + the signal's number, no traceback, and no process of its
session left behind.

A moment is counted from when partui's own handlers are in place (the process catches
SIGTERM: /proc/PID/status SigCgt), not from the fork: before that, CPython is still
starting (its `site` import) and a signal there is the interpreter's to handle.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from process_census import kill_session, session_pids
from waiting import budget, wait_until

COMMANDS = {
    "run": ["run", "--layer", "conv2", "--executor", "processes", "--workers", "2"]
    + ["--repeat", "500"],
    "sweep": ["sweep", "--layer", "conv2", "--executors", "threads,processes"] + ["--repeat", "50"],
    "train-hogwild": ["train", "--executor", "processes", "--update", "hogwild"]
    + ["--workers", "2", "--epochs", "5"],
    "train-threads": ["train", "--executor", "threads", "--epochs", "5"],
    "bench": ["bench", "--quick"],
    "demo": ["demo", "false-sharing"],
}
MOMENTS_S = (0.0, 1.5)
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
CASES = [
    (name, moment, SIGNALS[(i * len(MOMENTS_S) + j) % len(SIGNALS)])
    for i, name in enumerate(COMMANDS)
    for j, moment in enumerate(MOMENTS_S)
]


def _catches(pid: int, signum: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            mask = next(line for line in f if line.startswith("SigCgt:")).split()[1]
    except (OSError, StopIteration):
        return False
    return bool(int(mask, 16) >> (signum - 1) & 1)


@pytest.mark.parametrize(("name", "moment", "sig"), CASES, ids=lambda v: str(v))
def test_a_signal_at_any_moment_ends_the_command_in_one_line(name, moment, sig, tmp_path):
    signal_command(name, moment, sig, tmp_path, group=False)


@pytest.mark.parametrize("moment", (0.5, 1.5))
def test_ctrl_c_at_the_terminal_during_hogwild_training_ends_in_one_line(moment, tmp_path):
    """Ctrl+C at a terminal reaches the whole process group: partui and its pool workers
    together, as the training's workers write into the shared weights."""
    signal_command("train-hogwild", moment, signal.SIGINT, tmp_path, group=True)


def signal_command(name: str, moment: float, sig: int, tmp_path, group: bool) -> None:
    """Start command `name` in its own session, send `sig` `moment` s after its handlers are
    in place (to its process group if `group`, as a terminal does), and check the end."""
    proc = start_partui(COMMANDS[name], tmp_path)
    try:
        wait_until(
            lambda: _catches(proc.pid, signal.SIGTERM) or proc.poll() is not None,
            budget(30),
            interval=0.005,
        )
        time.sleep(moment)  # the moment hit: a parameter, not a wait for a state
        assert proc.poll() is None, f"{name} ended before the signal: make it longer"
        if group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        err = its_end(proc)
    finally:
        kill_session(proc)
    assert_one_line(proc, err, sig)


def start_partui(args: list[str], tmp_path) -> subprocess.Popen:
    """`partui ARGS` in its own session, its files under tmp_path, stderr kept."""
    env = {
        **os.environ,
        "PARTUI_SNAPSHOT_DIR": str(tmp_path / "snaps"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "partui", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
        start_new_session=True,
        # a shell's background job ignores SIGINT, and its children inherit that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def its_end(proc: subprocess.Popen) -> str:
    """Wait for `proc` to end and for its session to be gone; its stderr."""
    _, err = proc.communicate(timeout=budget(60))
    wait_until(lambda: not session_pids(proc.pid), budget(10), message="processes left")
    return err


def assert_one_line(proc: subprocess.Popen, err: str, sig: int) -> None:
    said = "interrupted" if sig == signal.SIGINT else f"stopped by {sig.name}"
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert err.splitlines()[-1].startswith(f"partui: {said}"), err


def test_ctrl_c_with_a_stopped_training_worker_ends_in_one_line(tmp_path):
    """A pool worker stopped (SIGSTOP, as a debugger or a job-control slip leaves it), then
    Ctrl+C at the terminal: `train` does not wait for that worker for ever; it ends with its
    one line and 130, and no process of its session is left."""
    import psutil

    proc = start_partui(
        ["train", "--executor", "processes", "--workers", "2", "--epochs", "50"], tmp_path
    )

    def workers() -> list:
        # the pool's workers: forked by multiprocessing's fork server, a child of partui
        try:
            return [
                p
                for p in psutil.Process(proc.pid).children(recursive=True)
                if p.ppid() != proc.pid and "forkserver" in " ".join(p.cmdline())
            ]
        except psutil.Error:
            return []

    try:
        found = wait_until(lambda: len(workers()) >= 2 and workers(), 60, interval=0.02)
        # training under way: the worker has done some of its share
        wait_until(lambda: found[0].cpu_times().user > 0.2, 60, interval=0.02)
        found[0].suspend()
        os.killpg(proc.pid, signal.SIGINT)
        err = its_end(proc)
    finally:
        kill_session(proc)
    assert_one_line(proc, err, signal.SIGINT)
