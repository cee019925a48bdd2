"""The dashboard's train tab: keys, start/stop, overlaid runs, save; and its SVG snapshot."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from test_screens_svg import FOLDER, MACHINE
from waiting import wait_until_async

from partui.kernels.grad.jobs import BACKWARD, FORWARD, UPDATE
from partui.profiles.records.events import Span
from partui.profiles.records.train_config import TrainConfig
from partui.profiles.service.engine import EngineThread
from partui.profiles.service.training import TrainThread
from partui.profiles.store import snapshot
from partui.profiles.train.trainer import EpochReport
from partui.tui.dashboard.app import PartuiApp
from partui.tui.dashboard.charts.train import TrainRun
from partui.tui.dashboard.tabs.train import TrainTab

SMALL = TrainConfig(epochs=2, batch=32, workers=2, executor="threads", train_size=128, test_size=32)


def make_app(folder) -> PartuiApp:
    return PartuiApp(
        snapshot_dir=folder,
        engine_factory=EngineThread,
        live_loop=False,
        machine=MACHINE,
        train_factory=TrainThread,
    )


async def wait_run(tab: TrainTab, pilot, timeout=120.0):
    await wait_until_async(
        lambda: tab.runs[-1].state not in ("starting", "running", "stopping"),
        timeout,
        interval=0.05,
        between=tab.tick,
        message=lambda: f"{tab.runs[-1].state}: {tab.message}",
    )
    tab.tick()
    assert tab.runs[-1].state in ("done", "stopped"), (tab.runs[-1].state, tab.message)


async def test_keys_change_the_settings(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n")
        tab = app.query_one(TrainTab)
        assert app.query_one("#tabs").active == "train" and tab.has_focus
        tab.cfg = SMALL
        await pilot.press("u", "c", "e", "plus", "right_square_bracket", "full_stop")
        c = tab.cfg
        assert (c.update, c.combine, c.executor, c.workers, c.batch, c.lr) == (
            "hogwild",
            "locked",
            "processes",
            3,
            64,
            0.05,
        )
        await pilot.press("minus", "left_square_bracket", "comma", "e", "u", "c")
        c = tab.cfg
        assert (c.update, c.combine, c.executor, c.workers, c.batch, c.lr) == (
            "sync",
            "reduce",
            "threads",
            2,
            32,
            0.02,
        )
        text = tab.settings_text()
        assert (
            "update sync (u)" in text
            and "batch 32 ([/])" in text
            and "idle: g starts a run" in text
        )


async def test_two_runs_overlaid_then_saved(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n")
        tab = app.query_one(TrainTab)
        tab.cfg = SMALL
        await pilot.press("g")
        await wait_run(tab, pilot)
        await pilot.press("u", "g")  # the same with Hogwild!
        await wait_run(tab, pilot)
        assert [r.cfg.update for r in tab.runs] == ["sync", "hogwild"]
        for run in tab.runs:
            assert len(run.reports) == 2 and len(run.losses) == 8 and len(run.accuracy) == 2
            assert {s.phase for s in run.recent} >= {FORWARD, BACKWARD, UPDATE}
        assert "#2 hogwild t2: done" in tab.settings_text()
        # every step's images ride with its loss: the second run starts from 0 again
        assert [run.images[-1] for run in tab.runs] == [256, 256]
        assert [a[0] for a in tab.runs[1].accuracy] == [128, 256]
        await pilot.press("v")
        assert tab.by_images and "x axis images" in tab.settings_text()
        await pilot.press("s")
        (path,) = Path(tmp_path).glob("train-*.json")
        records = snapshot.load(path).training
        assert [r["config"]["update"] for r in records] == ["sync", "hogwild"]
        assert len(records[1]["loss_curve"]) == 8


async def test_stop_key_ends_a_run_and_a_change_applies_at_the_next_epoch(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n")
        tab = app.query_one(TrainTab)
        # more epochs than any machine runs before the stop key: the native step does SMALL's
        # 4 steps an epoch in milliseconds, so 50 epochs could end before the key
        tab.cfg = TrainConfig(**{**SMALL.to_dict(), "epochs": 10_000})
        await pilot.press("g")
        await wait_until_async(lambda: tab.runs[-1].reports, 120, interval=0.05, between=tab.tick)
        await pilot.press("u")  # during the run: hogwild from the next epoch
        assert "next epoch" in tab.message
        run = tab.runs[-1]
        await wait_until_async(
            lambda: run.cfg.update == "hogwild" or run.state != "running",
            120,
            interval=0.05,
            between=tab.tick,
        )
        # the same run goes on: its first epoch was sync, a later one Hogwild!
        assert len(tab.runs) == 1 and run.configs[0].update == "sync"
        assert run.configs[-1].update == "hogwild"
        await pilot.press("g")  # stop
        await wait_run(tab, pilot)
        assert tab.runs[-1].state == "stopped" and len(tab.runs[-1].reports) < 10_000


def _fake_staleness(update):
    from partui.profiles.train import measures

    if update == "sync":
        return measures.sync_staleness()
    return measures.staleness_summary({0: 10, 1: 20, 2: 8, 3: 1})


def _fake_phases(update):
    """Each worker's last three steps: w1 computes longer; under sync w0 waits for it."""
    sync = update == "sync"
    recent = [
        [[8.0 + k, 3.0 if sync else 0.0, 0.5 if sync else 0.0, 0.4] for k in range(3)],
        [[11.0 + k, 0.0, 0.5 if sync else 0.0, 0.4] for k in range(3)],
    ]
    return {
        "workers": [],
        "steps": 3,
        "straggler_gap_ms": None,
        "wait_note": None,
        "recent": recent,
    }


def _fake_run(number, update, speed):
    cfg = TrainConfig(epochs=3, workers=2, update=update)
    run = TrainRun(number, cfg)
    for step in range(1, 61):
        run.losses.append((step, step * speed, 3.3 * 0.97 ** (step * (1 + number / 4))))
    for epoch in (1, 2, 3):
        rep = EpochReport(
            epoch,
            20,
            1280,
            20 * speed,
            epoch * 20 * speed,
            1.0 / epoch,
            0.5,
            0.6 + 0.1 * epoch * number / 2,
            1280 / (20 * speed),
            {"forward": 10.0, "backward": 20.0},
            [0.5, 0.5],
            staleness=_fake_staleness(update),
            overlapping_updates=(2 if epoch == 1 else 1) if update == "hogwild" else 0,
            step_phases=_fake_phases(update),
        )
        run.reports.append(rep)
        run.accuracy.append((epoch * 20, epoch * 20 * speed, rep.test_accuracy))
    run.recent = [
        Span(w, 0, t0, t1, 1, phase=ph)
        for w in (0, 1)
        for ph, t0, t1 in (
            (FORWARD, 0, 4_000_000 + w * 500_000),
            (BACKWARD, 4_500_000, 12_000_000),
            (UPDATE, 12_500_000, 13_000_000),
        )
    ]
    run.state = "done"
    return run


def test_train_tab_svg(snap_compare):
    def show(pilot):
        tab = pilot.app.query_one(TrainTab)
        tab.runs = [_fake_run(1, "hogwild", 0.035), _fake_run(2, "sync", 0.05)]
        tab.redraw()

    app = PartuiApp(
        snapshot_dir=FOLDER,
        engine_factory=EngineThread,
        live_loop=False,
        machine=MACHINE,
        train_factory=TrainThread,
    )
    assert snap_compare(app, terminal_size=(120, 40), press=["n"], run_before=show)


def test_epoch_ticks_are_whole_epochs():
    from partui.tui.dashboard.charts.train import epoch_ticks

    assert epoch_ticks(1) == [1] and epoch_ticks(3) == [1, 2, 3]
    assert epoch_ticks(20) == [1, 5, 10, 15, 20] and epoch_ticks(12) == [2, 4, 6, 8, 10, 12]
    for last in range(1, 300):
        ticks = epoch_ticks(last)
        assert all(isinstance(t, int) and 1 <= t <= last for t in ticks) and len(ticks) <= 8


async def test_charts_read_true_points_whole_epochs_a_full_percent_scale(tmp_path):
    """Per-epoch figures are points (no line between them), the epoch axis has whole
    epochs, accuracy runs 0-100 %, and every title and legend fits its pane at 120x40."""
    from textual_plotext import PlotextPlot

    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n")
        tab = app.query_one(TrainTab)
        tab.runs = [_fake_run(1, "hogwild", 0.035), _fake_run(2, "sync", 0.05)]
        tab.redraw()
        await pilot.pause()

        def chart(name) -> PlotextPlot:
            return app.query_one(f"#train-{name}", PlotextPlot)

        speed = chart("speed").render().plain.splitlines()
        assert sum(line.count("●") for line in speed) == 6  # 2 runs x 3 epochs, each a point
        assert not any(ch in "".join(speed) for ch in "•⠁⠂⠄⡀⠈⠐⠠⢀")  # no dotted line
        ticks = next(line for line in speed if line.split() == ["1", "2", "3"])
        assert ticks and speed[speed.index(ticks) + 1].strip() == "epoch"
        accuracy = chart("accuracy").render().plain.splitlines()
        labels = [line.split("┤")[0].strip() for line in accuracy if "┤" in line]
        assert labels == ["100", "75", "50", "25", "0"]
        assert "●" in "".join(accuracy) and "•" not in "".join(accuracy)
        for name in ("loss", "accuracy", "speed", "phases", "staleness"):
            c = chart(name)
            room = c.size.width - 4  # the border's corners and a space each side
            assert len(str(c.border_title)) <= room, (name, c.border_title)
            subtitle = Text.from_markup(str(c.border_subtitle)).plain
            assert len(subtitle) <= room, (name, subtitle)
            if name == "loss":
                assert subtitle == "● #1 hogwild t2 ● #2 sync/reduce t2"
            elif name in ("accuracy", "speed"):  # too narrow for the labels: the numbers
                assert subtitle == "● #1 ● #2"
        assert Text.from_markup(str(chart("phases").border_subtitle)).plain == (
            "█compute ░wait █combine █update"
        )
        # the newest Hogwild! run's histogram of its 3 epochs' stamps
        assert Text.from_markup(str(chart("staleness").border_subtitle)).plain == (
            "med 1 p95 2 max 3 · overlaps 4"
        )
