"""Each tab is a unit: its keys hold only on it, `?` explains them, and what it runs shows in
the header, its processes' CPU counted as partui's."""

from __future__ import annotations

import asyncio

import psutil

from partui.profiles.records.config import RunConfig
from partui.profiles.service.engine import EngineThread
from partui.tui.dashboard.activity import ProcessCensus
from partui.tui.dashboard.app import PartuiApp
from partui.tui.dashboard.widgets.header import MachineHeader

SIZE = (120, 40)


def make_app(tmp_path) -> PartuiApp:
    cfg = RunConfig(layer="conv2", workers=2, batch=4, repeats=2)
    return PartuiApp(
        snapshot_dir=tmp_path, config=cfg, engine_factory=EngineThread, live_loop=False
    )


async def wait_for(predicate, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def header(app: PartuiApp) -> str:
    app.refresh_header()
    return str(app.query_one(MachineHeader).render())


def child_running(module: str) -> psutil.Process | None:
    """This process's child that runs `module` (started with python -c)."""
    for proc in psutil.Process().children(recursive=True):
        try:
            if module in " ".join(proc.cmdline()):
                return proc
        except psutil.Error:
            continue
    return None


async def test_training_shows_in_the_header_and_its_process_counts_as_partuis(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        census = ProcessCensus()
        await pilot.press("n", "g")
        assert app.train.running
        await wait_for(lambda: child_running("partui.profiles.service.training") is not None)
        child = child_running("partui.profiles.service.training")
        assert " training " in header(app) and "idle" not in header(app)
        await asyncio.sleep(1.0)  # the child imports and trains: it uses CPU
        share = census.measure()
        assert child is not None and child.pid in census.pids
        assert share.partui is not None and share.dashboard is not None
        assert share.partui > share.dashboard  # the training process is partui's
        app.activity.cpu = share
        assert "partui" in header(app) and "other programs" in header(app)
        await pilot.press("escape")  # the train tab's esc stops its run
        assert not app.train.running
        assert " training " not in header(app)


async def test_a_lab_experiment_shows_in_the_header_and_runs_in_its_own_process(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        census = ProcessCensus()
        await pilot.press("m")
        app.lab.quick = True
        app.lab.start("stride")
        assert "lab: stride" in header(app)
        assert "needs 0 MiB" not in str(app.query_one("#memlab-text").render())
        await wait_for(lambda: child_running("partui.profiles.service.lab") is not None)
        child = child_running("partui.profiles.service.lab")
        census.measure()
        assert child is not None and child.pid in census.pids
        assert child.pid != psutil.Process().pid  # off the dashboard's process
        await wait_for(lambda: app.lab.points or not app.lab.running)
        await pilot.press("escape")
        await wait_for(lambda: not app.lab.running, timeout=10)
        assert "lab: stride" not in header(app) and "idle" in header(app)


async def test_the_lab_shows_the_memory_an_experiment_needs(tmp_path):
    from partui.profiles.lab.runner import memory_need
    from partui.profiles.system.units import size_text

    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("m")
        app.lab.quick = True
        app.lab.start("stride")
        text = str(app.query_one("#memlab-text").render())
        assert f"needs {size_text(memory_need('stride', quick=True))}" in text
        await pilot.press("escape")
        await wait_for(lambda: not app.lab.running, timeout=20)


async def test_help_lists_the_keys_of_the_tab_in_view(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:

        async def help_text() -> str:
            await pilot.press("question_mark")
            text = str(app.screen.query_one("Static").render())
            await pilot.press("escape")
            return text

        profile = await help_text()
        assert "Keys of the profile tab" in profile and "one worker more" in profile
        assert "the timeline: the next timed repeat" in profile
        await pilot.press("n")
        train = await help_text()
        assert "Keys of the train tab" in train
        assert "a higher learning rate" in train and "update rule" in train
        assert "timed repeat" not in train and "run the configuration once" not in train
        assert "inline" not in train.split("next executor:")[1].splitlines()[0]
        await pilot.press("m")  # from the train tab: back to the profile tab
        await pilot.press("m")
        lab = await help_text()
        assert "Keys of the lab tab" in lab and "stop the experiment" in lab
        assert "learning rate" not in lab and "one worker more" not in lab


async def test_a_key_of_another_tab_does_nothing(tmp_path):
    from partui.tui.dashboard.keys import KeyBar

    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        bar = str(app.query_one(KeyBar).render())
        assert "g  start/stop" in bar and "r  run" not in bar
        await pilot.press("r", "space", "w", "t")  # the profile tab's keys
        assert app.engine is None and not app.profile.queued and not app.profile.live
        assert app.session.config.strategy == RunConfig(layer="conv2").strategy
        await pilot.press("m", "g", "u")  # the train tab's keys, on the profile tab
        assert not app.train.runs and app.train.cfg.update == "sync"
        await pilot.press("m")  # the lab: neither tab's keys
        await pilot.press("r", "g")
        assert app.engine is None and not app.train.runs
