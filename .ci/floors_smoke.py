"""Start the dashboard headless on the installed partui, run conv2 once, open the lab tab."""

import asyncio
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

from partui.profiles.config import RunConfig
from partui.profiles.stream import EngineThread
from partui.tui.app import PartuiApp


async def main() -> int:
    app = PartuiApp(
        snapshot_dir=Path(tempfile.mkdtemp()),
        config=RunConfig("conv2", "batch", "vectorized", "threads", 2, 4, 2, 0),
        engine_factory=EngineThread,
        live_loop=False,
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("r")
        loop = asyncio.get_running_loop()
        end = loop.time() + 300  # numba's first compile included
        while not app.session.runs and loop.time() < end:
            app.tick()
            await asyncio.sleep(0.05)
        ok = bool(app.session.runs) and app.session.runs[-1].ok
        await pilot.press("m")
        await pilot.pause()
    names = ("textual", "textual-plotext", "numpy", "numba", "psutil", "threadpoolctl")
    print(" ".join(f"{n} {version(n)}" for n in names))
    print(f"dashboard started, conv2 run verified: {ok}; return code {app.return_code}")
    return 0 if ok and not app.return_code else 1


sys.exit(asyncio.run(main()))
