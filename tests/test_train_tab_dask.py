"""The train tab on Dask: `e` reaches it, a run trains on a LocalCluster and the tab shows the
cluster's address, the gradient bytes a step moves and the exchange's time; a lost worker
ends the run in one line."""

from __future__ import annotations

import os
import signal

from test_screens_svg import MACHINE
from waiting import wait_until_async

from partui.profiles.records.train_config import TrainConfig
from partui.profiles.service.engine import EngineThread
from partui.profiles.service.training import TrainProcess
from partui.tui.dashboard.app import PartuiApp
from partui.tui.dashboard.tabs.train import TrainTab

SMALL = TrainConfig(
    epochs=50, batch=32, workers=2, executor="threads", train_size=192, test_size=32
)


def make_app(folder) -> PartuiApp:
    return PartuiApp(
        snapshot_dir=folder,
        engine_factory=EngineThread,
        live_loop=False,
        machine=MACHINE,
        # the dashboard's own: a child process (a LocalCluster started under Textual's
        # captured stderr here could not start multiprocessing's resource tracker)
        train_factory=TrainProcess,
    )


async def wait_state(tab: TrainTab, states, timeout=120.0):
    await wait_until_async(
        lambda: tab.runs[-1].state in states,
        timeout,
        interval=0.05,
        between=tab.tick,
        message=lambda: f"{tab.runs[-1].state}: {tab.message}",
    )
    tab.tick()


async def test_e_reaches_dask_the_tab_shows_the_cluster_and_a_lost_worker_ends_the_run(
    tmp_path, monkeypatch
):
    monkeypatch.delenv("PARTUI_DASK_SCHEDULER", raising=False)
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n")
        tab = app.query_one(TrainTab)
        tab.cfg = TrainConfig(**{**SMALL.to_dict(), "update": "hogwild"})
        # Hogwild! needs shared memory: Dask is passed over, and the tab says why
        await pilot.press("e", "e")
        assert tab.cfg.executor == "threads" and "dask passed over" in tab.message
        tab.cfg = TrainConfig(**{**SMALL.to_dict(), "combine": "locked"})
        await pilot.press("e", "e")
        # Dask has no locked accumulator: the combine becomes reduce; c cycles Dask's two
        assert (tab.cfg.executor, tab.cfg.combine) == ("dask", "reduce")
        await pilot.press("c")
        assert tab.cfg.combine == "gather"
        await pilot.press("c", "g")
        # an epoch's figures on the tab; the run goes on (many epochs) until a worker is lost
        await wait_until_async(
            lambda: "gradient_bytes" in tab.dask or tab.runs[-1].state == "failed",
            120,
            interval=0.05,
            between=tab.tick,
            message=lambda: f"{tab.runs[-1].state}: {tab.message}",
        )
        assert tab.runs[-1].state == "running", tab.message
        d = tab.dask
        assert d["scheduler"].startswith("tcp://") and d["cluster"] == "local"
        # reduce on two workers: one gradient up the tree, the sum down to the other
        assert d["gradient_bytes"] > 1_000_000 and d["between_bytes"] == 2 * d["gradient_bytes"]
        assert 0 < d["exchange_ms"] <= d["step_ms"]
        text = tab.settings_text()
        assert f"dask {d['scheduler']} (local, 2 workers)" in text
        assert "MiB moved a step" in text and "exchange" in text
        # mid-epoch: two steps into the next one (an epoch is 6 steps)
        await wait_until_async(
            lambda: tab.runs[-1].losses[-1][0] >= 8 or tab.runs[-1].state == "failed",
            120,
            interval=0.02,
            between=tab.tick,
            message=lambda: f"{tab.runs[-1].state}: {tab.message}",
        )
        os.kill(d["pids"][1], signal.SIGKILL)
        await wait_state(tab, ("done", "failed", "stopped"))
        assert tab.runs[-1].state == "failed"
        assert tab.message.startswith("training stopped: ") and "Dask" in tab.message
        assert "\n" not in tab.message
