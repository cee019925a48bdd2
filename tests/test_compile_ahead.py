"""First run after an install: the native kernels compile ahead of need, into the user's
cache folder, and the command line and the dashboard say so."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from functools import partial

from partui.kernels import warmup
from partui.kernels.runtime import jitcache
from partui.profiles.records.config import RunConfig
from partui.profiles.records.events import Compiling, CpuSample, RunFinished, RunStarted
from partui.profiles.service.engine import EngineThread


def test_kernels_compile_into_the_user_cache_folder(tmp_path):
    """Not next to the source (site-packages may be read-only): under $XDG_CACHE_HOME."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    code = (
        "from partui.kernels import warmup\nfrom partui.kernels.runtime import jitcache\n"
        "assert jitcache.missing(['pool1']) == ['pool1']\n"
        "warmup.compile_kernels(['pool1'])\n"
        "print(jitcache.missing(['pool1', 'gelu1']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['gelu1']"
    folder = tmp_path / "partui" / "numba"
    assert list(folder.rglob("*.nbi")), "numba wrote no cache index there"
    assert list(folder.glob("partui-kernels-*-pool1.done"))


class FakeCompiler:
    """Stands in for numba: records the order, and can hold a layer until released."""

    def __init__(self, hold: str | None = None):
        self.calls: list[str] = []
        self.hold = hold
        self.release = threading.Event()

    def __call__(self, layers, on_layer=None) -> float:
        for name in layers:
            self.calls.append(name)
            if name == self.hold:
                assert self.release.wait(30)
        return 0.01


def fake_cache(monkeypatch, todo, compiler):
    monkeypatch.setattr(jitcache, "missing", lambda layers: [n for n in todo if n in layers])
    monkeypatch.setattr(warmup, "compile_kernels", compiler)


def test_the_engine_compiles_a_runs_layer_first_then_the_rest_while_idle(monkeypatch):
    compiler = FakeCompiler()
    fake_cache(monkeypatch, ["conv1", "conv2", "pool1"], compiler)
    engine = EngineThread(compile_ahead=True)
    engine.submit(RunConfig("conv2", workers=2, batch=4, repeats=1, warmup=0))
    engine.start()
    events, deadline = [], time.monotonic() + 60
    while not any(isinstance(e, Compiling) and e.done and e.left == 0 for e in events):
        assert time.monotonic() < deadline, events
        events += engine.drain()
        time.sleep(0.01)
    engine.close()
    assert compiler.calls == ["conv2", "conv1", "pool1"]
    kinds = [
        (type(e).__name__, getattr(e, "layer", None))
        for e in events
        if isinstance(e, (Compiling, RunStarted, RunFinished))
    ]
    assert kinds[:4] == [
        ("Compiling", "conv2"),
        ("Compiling", "conv2"),
        ("RunStarted", None),
        ("RunFinished", None),
    ]
    assert [e.left for e in events if isinstance(e, Compiling) and e.done] == [2, 1, 0]


def test_without_compile_ahead_nothing_compiles_early(monkeypatch):
    compiler = FakeCompiler()
    fake_cache(monkeypatch, ["conv1", "conv2"], compiler)
    with EngineThread() as engine:
        time.sleep(0.2)
        # the always-on CPU monitor may report; nothing else may happen
        assert not [e for e in engine.drain() if not isinstance(e, CpuSample)]
    assert compiler.calls == []


async def test_the_dashboard_says_it_is_compiling(monkeypatch, tmp_path):
    from partui.tui.dashboard.app import PartuiApp
    from partui.tui.dashboard.widgets.header import MachineHeader

    compiler = FakeCompiler(hold="conv2")
    fake_cache(monkeypatch, ["conv2", "pool1"], compiler)
    app = PartuiApp(
        snapshot_dir=tmp_path,
        config=RunConfig("conv2", workers=2),
        engine_factory=partial(EngineThread, compile_ahead=True),
        live_loop=False,
    )
    loop = asyncio.get_running_loop()
    async with app.run_test(size=(120, 40)):
        app.start_engine()  # the live loop (off in tests) starts it at mount
        deadline = loop.time() + 30
        while app.activity.compiling is None:
            assert loop.time() < deadline
            app.tick()
            await asyncio.sleep(0.02)
        header = str(app.query_one(MachineHeader).render())
        assert "compiling kernels, first run only: conv2 (2 layers to go)" in header
        compiler.release.set()
        while app.activity.compiling is not None or compiler.calls != ["conv2", "pool1"]:
            assert loop.time() < deadline
            app.tick()
            await asyncio.sleep(0.02)
        assert "compiling" not in str(app.query_one(MachineHeader).render())


def test_the_cli_says_so_on_first_use_only(monkeypatch, capsys):
    from partui.tui.cli.commands.preflight import compile_ahead

    compiler = FakeCompiler()
    fake_cache(monkeypatch, ["conv2"], compiler)
    compile_ahead(["conv2"], "vectorized")
    err = capsys.readouterr().err
    assert "compiling kernels, first run only (conv2)" in err and compiler.calls == ["conv2"]
    compile_ahead(["conv2"], "loops")  # plain Python: nothing to compile
    compile_ahead(["pool1"], "vectorized")  # in the cache already
    assert capsys.readouterr().err == "" and compiler.calls == ["conv2"]
