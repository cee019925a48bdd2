"""Soak: the live dashboard under key switches for a long while; does anything grow?

Starts `partui --live` in its own tmux session, presses a key every KEY_S seconds (strategy,
executor, workers, layer, tab: the switches a person makes), and every --every seconds
records, for the dashboard process and its own process tree only (other people's partui
runs on the same machine are not counted):

    rss_mb      the dashboard's resident memory
    threads     the dashboard's threads
    fds         the dashboard's open files
    children    live processes under the dashboard (engine, fork server, pool workers)
    shm         /dev/shm entries mapped by the tree (psm_* segments, sem.* semaphores)

At the end it quits with q and lists what the tree left behind: processes still running and
/dev/shm entries it had mapped that still exist. Not a test: it prints figures.

    python tests/benchmarks/soak_live.py --minutes 10 --every 30
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the census helper
from process_census import shm_mapped  # noqa: E402

KEYS = ["t", "e", "plus", "T", "minus", "E", "Down", "Up", "m", "m", "t", "t", "E", "e"]
KEY_S = 1.5


def tmux(*args, check=True):
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=check)


def tree(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [p for p in root.children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE]
    except psutil.Error:
        return []


def find_dashboard(pane_pid: int, timeout: float = 30) -> psutil.Process:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pane = psutil.Process(pane_pid)
        for p in [pane, *pane.children(recursive=True)]:
            try:
                if "partui" in " ".join(p.cmdline()) and "-c" not in p.cmdline():
                    return p
            except psutil.Error:
                pass
        time.sleep(0.2)
    raise SystemExit("the dashboard did not start")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--every", type=float, default=30.0, help="seconds between records")
    ap.add_argument("--session", default=f"reliability-soak-{os.getpid()}")
    args = ap.parse_args()
    if not shutil.which("tmux"):
        raise SystemExit("tmux is needed")
    partui = Path(sys.executable).with_name("partui")
    work = Path(tempfile.mkdtemp(prefix="partui-soak-"))
    env = f"PARTUI_SNAPSHOT_DIR={work / 'snaps'} PARTUI_BASELINE_BOOK={work / 'book.json'}"
    tmux(
        "new-session",
        "-d",
        "-s",
        args.session,
        "-x",
        "120",
        "-y",
        "40",
        f"{env} {partui} --layer conv2 --batch 16 --workers 2 --executor processes --live",
    )
    seen_shm: set[str] = set()
    seen_pids: dict[int, psutil.Process] = {}
    try:
        pane = int(tmux("display-message", "-p", "-t", args.session, "#{pane_pid}").stdout)
        dash = find_dashboard(pane)
        print(f"dashboard pid {dash.pid}; load average {open('/proc/loadavg').read().split()[:3]}")
        print(
            f"{'t_s':>6} {'keys':>5} {'rss_mb':>7} {'threads':>7} {'fds':>5} "
            f"{'children':>8} {'shm':>4}"
        )
        t0 = time.monotonic()
        end = t0 + args.minutes * 60
        next_record, presses = t0, 0
        while True:
            now = time.monotonic()
            if now >= next_record or now >= end:
                kids = tree(dash)
                for k in kids:
                    seen_pids.setdefault(k.pid, k)
                shm = shm_mapped([dash, *kids])
                seen_shm |= shm
                print(
                    f"{now - t0:6.0f} {presses:5d} {dash.memory_info().rss / 2**20:7.1f} "
                    f"{dash.num_threads():7d} {dash.num_fds():5d} {len(kids):8d} "
                    f"{len(shm):4d}",
                    flush=True,
                )
                next_record += args.every
                if now >= end:
                    break
            tmux("send-keys", "-t", args.session, KEYS[presses % len(KEYS)])
            presses += 1
            time.sleep(KEY_S)
        print(f"load average at the end {open('/proc/loadavg').read().split()[:3]}")
        tmux("send-keys", "-t", args.session, "q")
        try:
            dash.wait(15)
        except psutil.TimeoutExpired:
            print("the dashboard did not quit within 15 s of q")
        time.sleep(2)
        left = [
            p.pid
            for p in seen_pids.values()
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE
        ]
        shm_left = sorted(n for n in seen_shm if os.path.exists(f"/dev/shm/{n}"))
        print(
            f"after q: processes of the tree still running: {left or 'none'}; "
            f"/dev/shm entries left: {shm_left or 'none'}"
        )
        return 1 if left or shm_left else 0
    finally:
        tmux("kill-session", "-t", args.session, check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
