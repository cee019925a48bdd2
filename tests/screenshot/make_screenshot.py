"""Regenerate tests/screenshot/partui.svg, the README's screenshot: the dashboard after a
worker sweep of conv2 on this machine, every figure measured by the run it shows.

    python tests/screenshot/make_screenshot.py    # about a minute; writes its partui.svg
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from partui.profiles.records.config import RunConfig
from partui.profiles.service.engine import EngineThread
from partui.tui.dashboard.app import PartuiApp

OUT = Path(__file__).resolve().parent / "partui.svg"
SIZE = (120, 40)


async def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        app = PartuiApp(
            snapshot_dir=Path(folder),
            engine_factory=EngineThread,
            live_loop=False,
            config=RunConfig("conv2", workers=2),
        )
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("w")  # worker sweep: 1..cores workers, then the speedup chart
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 300
            while (app.busy or app.sweep_left or not app.session.runs) and loop.time() < deadline:
                app.tick()
                await asyncio.sleep(0.05)
            if not app.session.runs or not all(r.ok for r in app.session.runs):
                print("the sweep did not finish with verified runs", file=sys.stderr)
                return 1
            app.clear_notifications()
            app.redraw(force=True)
            await pilot.pause()
            app.save_screenshot(filename=OUT.name, path=str(OUT.parent))
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
