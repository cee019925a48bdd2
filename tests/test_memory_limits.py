"""Memory checks respect the process's own limits and name them."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from partui.profiles.system import memory_limits
from partui.profiles.system.memory_limits import Room


def test_cgroup_memory_max_is_found_and_named(tmp_path):
    """cgroup v2: the tightest memory.max from the process's group up to the root."""
    inner = tmp_path / "user.slice" / "session"
    inner.mkdir(parents=True)
    (inner / "memory.max").write_text("max\n")  # no limit at this level
    (inner / "memory.current").write_text(str(10 * 2**20))
    (tmp_path / "user.slice" / "memory.max").write_text(str(300 * 2**20))
    (tmp_path / "user.slice" / "memory.current").write_text(str(200 * 2**20))
    room = memory_limits._cgroup_room(tmp_path, "0::/user.slice/session\n")
    assert room.bytes == 100 * 2**20
    assert "user.slice/memory.max" in room.limit and "300 MiB" in room.limit
    assert memory_limits._cgroup_room(tmp_path, "0::/\n") is None


def test_the_tightest_limit_wins(monkeypatch):
    monkeypatch.setattr(
        memory_limits,
        "_rlimit_room",
        lambda: Room(50 * 2**20, "the address-space limit (ulimit -v 1)"),
    )
    monkeypatch.setattr(memory_limits, "_cgroup_room", lambda: Room(80 * 2**20, "cgroup"))
    assert memory_limits.memory_room().limit.startswith("the address-space limit")
    text = memory_limits.shortfall(100 * 2**20)
    assert "ulimit -v" in text and "100 MiB" in text and "50 MiB" in text
    assert memory_limits.shortfall(10 * 2**20) is None


SCRIPT = textwrap.dedent("""
    import resource, sys
    import psutil
    from partui.tui.cli.main import main
    import partui.profiles.lab.runner, partui.profiles.run.engine  # loaded before the limit
    vms = psutil.Process().memory_info().vms
    resource.setrlimit(resource.RLIMIT_AS, (vms + 150 * 2**20, resource.RLIM_INFINITY))
    sys.exit(main(sys.argv[1:]))
""")


def under_ulimit_v(*args):
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=120
    )


def test_ulimit_v_is_checked_before_the_memory_lab_allocates():
    """Under `ulimit -v` the system has memory to spare but this process has not: the
    check says so and names the limit, instead of a MemoryError half-way."""
    proc = under_ulimit_v("demo", "stride")
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1 and "ulimit -v" in proc.stderr, proc.stderr


def test_ulimit_v_is_checked_before_a_large_run():
    """The engine refuses a run whose arrays cannot fit under the limit, naming it, before
    any pool starts or array is made."""
    script = SCRIPT.replace(
        "sys.exit(main(sys.argv[1:]))",
        textwrap.dedent("""
        from partui.profiles.records.limits import ConfigError
        from partui.profiles.records.config import RunConfig
        from partui.profiles.run.engine import Engine
        try:
            cfg = RunConfig("conv1", executor="inline", workers=1, batch=1024, repeats=1, warmup=0)
            Engine().run(cfg)
        except ConfigError as exc:
            print(exc)
    """),
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "ulimit -v" in proc.stdout and "conv1" in proc.stdout, proc.stdout
