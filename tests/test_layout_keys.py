"""Pilot tests of the dashboard's keys at every size: selection is the app's state, not a widget's.

The live loop is off and no run starts, so these take a fraction of a second each.
"""
from __future__ import annotations

import pytest

from partui.profiles.engine import RunConfig
from partui.profiles.stream import EngineThread
from partui.tui.app import PartuiApp
from partui.tui.panes import SettingsPane

SIZES = [(80, 24), (120, 40), (200, 60)]


def make_app(tmp_path, config=None) -> PartuiApp:
    return PartuiApp(snapshot_dir=tmp_path, config=config or RunConfig("conv2", workers=2),
                     engine_factory=EngineThread, live_loop=False)


def settings_text(app) -> str:
    return str(app.query_one(SettingsPane).render())


@pytest.mark.parametrize("size", SIZES)
async def test_down_reaches_network_under_pipeline(tmp_path, size):
    app = make_app(tmp_path)
    async with app.run_test(size=size) as pilot:
        await pilot.press("T", "T")  # batch -> none -> pipeline: "not applicable" lines
        assert app.session.config.strategy == "pipeline"
        seen = []
        for _ in range(15):
            await pilot.press("down")
            seen.append(app.session.config.layer)
        assert seen[-1] == "network"
        assert seen[:10] == ["pool2", "gelu2", "conv3", "pool3", "gelu3", "linear1",
                             "linear2", "linear3", "logsoftmax", "network"]
        await pilot.pause()
        text = settings_text(app)
        assert "network" in text.split("\n")[0] and "✓ valid" in text
        await pilot.press("up")
        assert app.session.config.layer == "logsoftmax"
        await pilot.press("down")
        assert app.session.config.layer == "network"


async def test_redraws_and_resizes_never_move_the_layer(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(4):
            await pilot.press("down")
        assert app.session.config.layer == "pool3"
        for size in [(80, 24), (200, 60), (100, 30), (120, 40)]:
            await pilot.resize_terminal(*size)
            await pilot.pause()
            app.redraw(force=True)
            await pilot.press("t", "e", "plus")  # the settings pane changes height
            await pilot.pause()
            assert app.session.config.layer == "pool3"
        assert "pool3" in settings_text(app).split("\n")[0]


async def test_the_layer_list_shows_the_chosen_layer(tmp_path):
    from partui.tui.panes import LayerList
    app = make_app(tmp_path, RunConfig("network", "pipeline", workers=2))
    async with app.run_test(size=(80, 24)) as pilot:
        layers = app.query_one(LayerList)
        assert layers.get_option_at_index(layers.highlighted).id == "network"
        await pilot.press("up", "up")
        await pilot.pause()
        assert app.session.config.layer == "linear3"
        assert layers.get_option_at_index(layers.highlighted).id == "linear3"
