"""Nothing partui starts outlives it: a stop signal, a kill or a closed terminal leaves no
process and no shared memory behind, and a process pool starts in full, is refused up front
or is rebuilt after losing a worker.

Every check looks only at the process tree of the partui the test started (by pid) and at
the /dev/shm entries that tree had mapped, never at the machine as a whole: other people's
partui runs share it.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time

import psutil
import pytest
from process_census import shm_mapped
from waiting import budget, wait_until, wait_until_async

from partui.profiles.records.config import RunConfig
from partui.profiles.system.machine import MachineInfo

LONG_RUN = [
    "run",
    "--layer",
    "conv2",
    "--batch",
    "64",
    "--kernel",
    "loops",
    "--repeat",
    "3",
    "--executor",
    "processes",
    "--workers",
    "2",
]


def alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def tree(pid: int) -> dict[int, psutil.Process]:
    try:
        return {p.pid: p for p in psutil.Process(pid).children(recursive=True)}
    except psutil.Error:
        return {}


class Watched:
    """A partui process and everything it has started so far, with what they mapped."""

    def __init__(self, proc, root: psutil.Process | None = None):
        self.proc = proc
        self.root = root or psutil.Process(proc.pid)
        self.family: dict[int, psutil.Process] = {}
        self.shm: set[str] = set()

    def look(self) -> None:
        self.family.update(tree(self.root.pid))
        self.shm |= shm_mapped([self.root, *self.family.values()])

    def wait_for(self, predicate, timeout: float = 60.0) -> None:
        def reached():
            self.look()
            if predicate(self):
                return True
            if self.proc.poll() is not None:
                pytest.fail(f"partui ended early ({self.proc.returncode})")
            return False

        wait_until(reached, timeout, message="partui never reached the state the test needs")

    def left_behind(self) -> tuple[list[int], list[str]]:
        left = [p.pid for p in self.family.values() if alive(p)]
        return left, sorted(n for n in self.shm if os.path.exists(f"/dev/shm/{n}"))

    def assert_all_gone(self, timeout: float) -> None:
        wait_until(
            lambda: self.left_behind() == ([], []),
            timeout,
            interval=0.05,
            message=lambda: "left behind: processes {}, /dev/shm {}".format(*self.left_behind()),
        )


def start_cli(args, new_session=True):
    return subprocess.Popen(
        [sys.executable, "-m", "partui.tui.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=new_session,
    )


def has_pool_and_shm(w: Watched) -> bool:
    return len(w.family) >= 4 and any(n.startswith("psm_") for n in w.shm)


@pytest.mark.parametrize("signum,to_group", [(signal.SIGTERM, False), (signal.SIGHUP, True)])
def test_sigterm_and_sighup_stop_a_headless_run_cleanly(signum, to_group):
    """SIGTERM to partui, or SIGHUP to its group (the terminal closed): workers
    stopped, fork server and resource tracker gone, shared memory and semaphores unlinked."""
    w = Watched(start_cli(LONG_RUN))
    w.wait_for(has_pool_and_shm)
    t0 = time.monotonic()
    if to_group:
        os.killpg(w.proc.pid, signum)
    else:
        w.proc.send_signal(signum)
    out, err = w.proc.communicate(timeout=budget(20))
    assert w.proc.returncode == 128 + signum, err
    assert err.endswith(f"partui: stopped by {signal.Signals(signum).name}\n"), err
    assert time.monotonic() - t0 < budget(3.0)
    w.assert_all_gone(timeout=3.0)


def test_sigkill_of_partui_leaves_nothing_running():
    """After SIGKILL partui cannot clean up: its pool workers' watchdogs end them,
    then the fork server and the resource tracker go, and the tracker unlinks the memory."""
    w = Watched(start_cli(LONG_RUN))
    w.wait_for(has_pool_and_shm)
    w.proc.kill()
    w.proc.wait(timeout=budget(10))  # (its pipes stay open while the orphans live)
    w.assert_all_gone(timeout=5.0)
    w.proc.communicate(timeout=budget(10))


def test_ctrl_c_while_64_process_workers_start():
    """Ctrl+C during a large pool's start-up is not held for the whole wait: exit
    130 within a second, no worker left."""
    w = Watched(
        start_cli(
            [
                "run",
                "--layer",
                "gelu3",
                "--batch",
                "64",
                "--executor",
                "processes",
                "--workers",
                "64",
                "--repeat",
                "1",
            ]
        )
    )
    w.wait_for(lambda w: len(w.family) >= 5)  # tracker, fork server and a few workers
    t0 = time.monotonic()
    w.proc.send_signal(signal.SIGINT)
    limit = budget(1.0)  # while the workers start, not after they are gone
    out, err = w.proc.communicate(timeout=budget(20))
    elapsed = time.monotonic() - t0
    assert w.proc.returncode == 130 and err.endswith("partui: interrupted\n"), err
    assert elapsed < limit, f"exited {elapsed:.2f} s after Ctrl+C (limit {limit:.2f} s)"
    w.assert_all_gone(timeout=3.0)


def test_32_process_workers_start_and_stop():
    """All 32 workers start: the run waits for every worker's initializer, so exit 0 means 32
    were up."""
    w = Watched(
        start_cli(
            [
                "run",
                "--layer",
                "gelu3",
                "--batch",
                "32",
                "--executor",
                "processes",
                "--workers",
                "32",
                "--repeat",
                "1",
            ]
        )
    )
    wait_until(lambda: w.proc.poll() is not None, 120, interval=0.05, between=w.look)
    out, err = w.proc.communicate(timeout=budget(10))
    assert w.proc.returncode == 0, err
    assert len(w.family) >= 32 + 2  # the workers, the fork server, the resource tracker
    w.assert_all_gone(timeout=3.0)


def test_too_many_process_workers_are_refused_up_front(capsys):
    """A pool the process limits cannot hold is refused with the reason, before
    anything starts."""
    import resource

    from partui.tui.cli.main import main

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(200, hard), hard))
    try:
        code = main(
            [
                "run",
                "--layer",
                "gelu3",
                "--executor",
                "processes",
                "--workers",
                "256",
                "--batch",
                "2",
            ]
        )
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("partui: error")]
    assert code == 2 and len(errors) == 1 and "open files" in errors[0], err


def test_open_file_limit_refuses_local_dask_and_training_pools_up_front():
    """A LocalCluster holds about a dozen descriptors here per worker and a training pool
    its workers' pipes: both are refused in one line under a low `ulimit -n`, before any
    process starts; a remote scheduler's workers are not counted here."""
    import resource

    from partui.profiles.executors.dask_cluster import DaskExecutor
    from partui.profiles.executors.registry import make_executor
    from partui.profiles.records.limits import ConfigError

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(100, hard), hard))
    try:
        local = DaskExecutor.refusal(8)
        remote = DaskExecutor.refusal(8, "tcp://127.0.0.1:8786")
        small = DaskExecutor.refusal(1)
        with pytest.raises(ConfigError, match="open files"):
            make_executor("processes", 32)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert local and "8 worker processes" in local and "ulimit -n" in local
    assert remote is None and small is None


def _pty_partui(args):
    """partui in its own session on a pseudo-terminal of 120x40, as a terminal window runs it."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color"}
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "partui.tui.cli.main", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    closing = threading.Event()

    def drain():  # a terminal reads what the program writes, or the program blocks
        try:
            while not closing.is_set():
                if select.select([master], [], [], 0.05)[0] and not os.read(master, 65536):
                    break
        except OSError:
            pass
        finally:
            # closed here, by its only reader: closed by another thread, its number could be
            # reused by a file opened meanwhile, and this loop would read that file instead
            os.close(master)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()

    def hang_up():
        """Close the terminal's side (the window closed)."""
        closing.set()
        reader.join()

    return proc, hang_up


def test_closing_the_terminal_of_a_live_processes_dashboard():
    """SIGHUP to the dashboard's group (its terminal closed) while live mode runs
    on processes: no process and no psm_* / sem.* entry left."""
    proc, hang_up = _pty_partui(
        ["--live", "--layer", "conv2", "--batch", "16", "--executor", "processes", "--workers", "2"]
    )
    try:
        w = Watched(proc)
        w.wait_for(has_pool_and_shm, timeout=90)
        os.killpg(proc.pid, signal.SIGHUP)
        hang_up()
        proc.wait(timeout=budget(20))
        w.assert_all_gone(timeout=5.0)
    finally:
        hang_up()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_dashboard_restarts_a_killed_engine(tmp_path):
    """The engine process killed: its workers end with it (none left using CPU or running past
    q), and the next run starts a new engine."""

    from partui.profiles.service.engine import EngineProcess
    from partui.tui.dashboard.app import PartuiApp

    app = PartuiApp(
        snapshot_dir=tmp_path,
        engine_factory=EngineProcess,
        live_loop=False,
        config=RunConfig("conv2", executor="processes", workers=2, batch=4, repeats=1, warmup=0),
        machine=MachineInfo(cpu_model="x"),
    )

    async def until(predicate, timeout=60.0):
        await wait_until_async(predicate, timeout, interval=0.05, between=app.tick)

    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("r")
        await until(lambda: len(app.session.runs) == 1)
        first = app.engine
        family = tree(first.pid)
        assert len(family) >= 3  # fork server, tracker, workers
        os.kill(first.pid, signal.SIGKILL)
        await until(lambda: not first.alive)
        await until(lambda: any("exited unexpectedly" in n.message for n in app._notifications))
        await wait_until_async(
            lambda: not any(alive(p) for p in family.values()),
            5,
            message=lambda: f"outlived the engine: {[p.pid for p in family.values() if alive(p)]}",
        )
        await pilot.press("r")
        await until(lambda: len(app.session.runs) == 2)
        assert app.engine is not first and app.engine.alive


def test_a_pool_whose_idle_worker_was_killed_is_rebuilt_for_the_next_run():
    """An idle worker process killed (as the OOM killer would) breaks the pool; the next
    run starts a new one instead of failing with BrokenProcessPool for good."""
    from partui.profiles.run.engine import Engine

    cfg = RunConfig(layer="pool3", executor="processes", workers=2, batch=4, repeats=2, warmup=0)
    with Engine(sample_hz=0) as engine:
        assert engine.run(cfg).ok
        ex = engine.executor("processes", 2)
        os.kill(ex.pids[0], signal.SIGKILL)
        deadline = time.monotonic() + 60  # the pool's manager thread notices the death
        while not ex.broken and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ex.broken
        again = engine.run(cfg)
        assert again.ok and again.pool_startup_ms > 0  # a new pool, started for this run


def test_a_cancelled_future_is_no_traceback_in_a_waits_callback(caplog):
    """Ctrl+C cancels queued futures; the progress callback must not ask a cancelled future
    for its exception (concurrent.futures logs 'exception calling callback')."""
    from concurrent.futures import CancelledError, Future

    from partui.profiles.executors.inline import InlineExecutor

    f: Future = Future()
    f.cancel()
    f.set_running_or_notify_cancel()  # as a pool does with the futures it drops
    with pytest.raises(CancelledError):
        InlineExecutor().wait([f], on_result=lambda r: None)
    assert "exception calling callback" not in caplog.text


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stop_signal_as_the_dashboard_takes_the_terminal_gives_it_back(signum):
    """SIGTERM, SIGHUP or a `kill -INT` right after the dashboard switched to the alternate
    screen (before its event loop handles them): it still leaves the alternate screen,
    shows the cursor and turns mouse tracking off on its way out, with 128 + the signal's
    number."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "partui"],
        stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
    )  # fmt: skip
    os.close(slave)
    seen = b""
    try:
        while b"\x1b[?1049h" not in seen:  # the alternate screen: send the signal now
            chunk = os.read(master, 65536)
            assert chunk, "the dashboard ended before it took the terminal"
            seen += chunk
        proc.send_signal(signum)
        after = b""
        try:
            while chunk := os.read(master, 65536):
                after += chunk
        except OSError:  # the other end closed (EIO on Linux)
            pass
        assert proc.wait(timeout=60) == 128 + signum
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert b"\x1b[?1049l" in after and b"\x1b[?25h" in after, after[-300:]


def test_the_memory_a_pool_worker_is_said_to_need_covers_what_one_holds():
    """The up-front check of a process pool counts WORKER_MEMORY per worker: a worker's own
    memory (USS: what it shares with the fork server not counted) after the whole network
    has run on it must stay under that figure. The network's kernels are compiled first, as
    partui's CLI and dashboard do before a run: a worker loads them from the disk cache, and
    never holds numba's compiler (whatever test ran before this one on a cold cache)."""
    from partui.kernels.warmup import compile_kernels
    from partui.profiles.executors.processes import WORKER_MEMORY
    from partui.profiles.run.engine import Engine

    compile_kernels(["network"])
    cfg = RunConfig(layer="network", executor="processes", workers=2, batch=32, repeats=2)
    with Engine(sample_hz=0) as engine:
        assert engine.run(cfg).ok
        own = [
            psutil.Process(p).memory_full_info().uss for p in engine.executor("processes", 2).pids
        ]
    assert own and max(own) <= WORKER_MEMORY, [f"{u / 2**20:.1f} MiB" for u in own]


def test_closing_a_pool_with_a_stopped_worker_ends_it():
    """A worker stopped by SIGSTOP never answers the pool's shutdown: closing waits its
    while, then ends it (SIGKILL reaches a stopped process), so Ctrl+C of a training run
    with such a worker does not hang."""
    from partui.profiles.executors.processes import CLOSE_WAIT_S, ProcessExecutor

    ex = ProcessExecutor(2)
    ex.start()
    procs = list(ex._pool._processes.values())  # noqa: SLF001
    os.kill(procs[-1].pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        ex.close()
        took = time.monotonic() - t0
    finally:
        for p in procs:
            if p.is_alive():
                os.kill(p.pid, signal.SIGKILL)
    assert not any(p.is_alive() for p in procs)
    assert CLOSE_WAIT_S <= took < CLOSE_WAIT_S + budget(10)


def test_a_worker_that_died_between_runs_is_said_in_words():
    """A pool worker killed while the pool was idle (as the OOM killer would) breaks the
    pool; the next submission says a worker was lost, never BrokenProcessPool's text."""
    from partui.profiles.executors.processes import ProcessExecutor
    from partui.profiles.records.limits import WorkerLost

    ex = ProcessExecutor(2)
    ex.start()
    try:
        os.kill(ex.pids[0], signal.SIGKILL)
        wait_until(lambda: ex.broken, budget(20), message="the pool never noticed")
        with pytest.raises(WorkerLost, match="worker process was lost"):
            ex.run_each(abs, [-1, -2])
    finally:
        ex.close()


# A child Python whose SIGTERM lands while the run's shared memory is being made (between
# the segment's mmap and its registration with the resource tracker: what the tests above
# catch only when the machine is busy), then says which segments it made still exist.
STRANDED = """
import os, signal
from multiprocessing import resource_tracker

class Stop(KeyboardInterrupt):
    pass

def stop(signum, frame):
    raise Stop

signal.signal(signal.SIGTERM, stop)
MAIN = os.getpid()
made = []
register = resource_tracker.register

def register_after_a_signal(name, rtype):
    if rtype == "shared_memory" and os.getpid() == MAIN:
        made.append(name.lstrip("/"))
        os.kill(MAIN, signal.SIGTERM)  # handled as soon as the kill returns, before register
    register(name, rtype)

resource_tracker.register = register_after_a_signal
try:
{stopped}
except Stop:
    print("stopped")
print("left:", [n for n in made if os.path.exists("/dev/shm/" + n)], "made:", len(made))
"""

A_RUN = """
    from partui.profiles.records.config import RunConfig
    from partui.profiles.run.engine import Engine

    with Engine(sample_hz=0) as engine:
        engine.run(RunConfig("gelu3", executor="processes", workers=2, batch=4, repeats=1))
"""

A_TRAINING = """
    from partui.profiles.records.train_config import TrainConfig
    from partui.profiles.train import datasets
    from partui.profiles.train.trainer import Trainer

    cfg = TrainConfig(epochs=1, batch=32, train_size=64, test_size=32, workers=2,
                      executor="processes")
    Trainer(cfg, datasets.builtin_letters(64, 32, 0)).run()
"""


@pytest.mark.parametrize("stopped", [A_RUN, A_TRAINING], ids=["run", "training"])
def test_a_stop_signal_while_the_shared_memory_is_made_leaves_none(stopped):
    """The signal is handled once the arena is held where the run's clean-up finds it: the
    run stops, and the segment it made is unlinked."""
    code = STRANDED.format(stopped=stopped)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=budget(120)
    )
    assert out.returncode == 0, out.stderr
    assert "stopped" in out.stdout and "left: [] made: 1" in out.stdout, out.stdout + out.stderr


async def test_the_dashboard_runs_again_after_an_idle_pool_worker_was_killed(tmp_path):
    """In the dashboard: a run on processes, one of its pool's workers killed while idle (as
    the OOM killer would), then `r` again: the next run is verified on a new pool, not
    failed with BrokenProcessPool."""
    from test_screens_svg import MACHINE

    from partui.profiles.service.engine import EngineProcess
    from partui.tui.dashboard.app import PartuiApp

    cfg = RunConfig(layer="pool3", executor="processes", workers=2, batch=4, repeats=2, warmup=0)
    app = PartuiApp(
        snapshot_dir=tmp_path,
        config=cfg,
        # the dashboard's own engine child: its pool's workers are the ones the OOM killer
        # would take (a pool started under the test's captured output cannot start)
        engine_factory=EngineProcess,
        live_loop=False,
        machine=MACHINE,
    )

    async def run_once(count: int):
        await wait_until_async(
            lambda: (
                len(app.session.runs) + len(app.session.failures) >= count
                and app.session.running is None
            ),
            120,
            interval=0.05,
            between=app.tick,
            message="the run did not end",
        )

    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("r")
        await run_once(1)
        assert app.session.runs, app.session.failures
        first = app.session.runs[-1]
        assert first.ok
        victim = next(s.tid for s in first.spans if s.repeat >= 0)
        os.kill(victim, signal.SIGKILL)
        await wait_until_async(lambda: _ended(victim), 30, message="the worker did not end")
        await pilot.press("r")
        await run_once(2)
        assert app.session.failures == [] and len(app.session.runs) == 2
        again = app.session.runs[-1]
        assert again.ok and victim not in {s.tid for s in again.spans}


def _ended(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
