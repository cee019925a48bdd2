"""Start the dashboard headless on the installed partui, run conv2 once, open the lab tab;
and check that reading the BLAS libraries cannot deadlock with an import on another thread."""

import asyncio
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

from partui.profiles.records.config import RunConfig
from partui.profiles.service.engine import EngineThread
from partui.tui.dashboard.app import PartuiApp

# A child reads the BLAS libraries (threadpoolctl) over and over on one thread while the main
# thread imports fresh extension modules (copies of one of numpy's under new names: each copy
# is a dlopen with the GIL held, then an ImportError). threadpoolctl < 3.7 walks the loaded
# libraries under the loader's lock with a call back into Python, and the two threads wait
# for each other for ever.
SCAN_WHILE_IMPORTING = """
import glob, importlib, importlib.machinery, os, shutil, sys, tempfile, threading
import numpy
from threadpoolctl import threadpool_info
suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
ext = sorted(glob.glob(os.path.join(os.path.dirname(numpy.__file__), "**", "*" + suffix)))[0]
d = tempfile.mkdtemp()
sys.path.insert(0, d)
for i in range(200):
    shutil.copy(ext, os.path.join(d, f"copy{i}{suffix}"))
stop = []
scans = []
def scan():
    while not stop:
        threadpool_info()
        scans.append(1)
t = threading.Thread(target=scan, daemon=True)
t.start()
for i in range(200):
    try:
        importlib.import_module(f"copy{i}")
    except ImportError:
        pass
stop.append(1)
t.join()
shutil.rmtree(d)
print(len(scans), "BLAS reads beside 200 extension imports")
"""


def scan_while_importing() -> bool:
    try:
        out = subprocess.run(
            [sys.executable, "-c", SCAN_WHILE_IMPORTING], capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        print("deadlock: reading the BLAS libraries beside an extension import hung for 60 s")
        return False
    print(out.stdout.strip() or out.stderr.strip())
    return out.returncode == 0


async def main() -> int:
    app = PartuiApp(
        snapshot_dir=Path(tempfile.mkdtemp()),
        config=RunConfig("conv2", workers=2, batch=4, repeats=2, warmup=0),
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
    return 0 if ok and not app.return_code and scan_while_importing() else 1


sys.exit(asyncio.run(main()))
