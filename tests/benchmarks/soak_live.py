"""Soak: the live dashboard under key switches for a long while; does anything grow?

Starts `partui --live` in its own tmux session, presses a key every KEY_S seconds (strategy,
executor, workers, layer, tab: the switches a person makes), and every --every seconds
records, for the dashboard process and its own process tree only (other people's partui
runs on the same machine are not counted):

    rss_mb      the dashboard's resident memory, and of it d_files_mb and d_data_mb (as below)
    engine_mb   the engine child's resident memory, and of it:
      files_mb    mapped files: the shared libraries (numba's LLVM among them), loaded once
      data_mb     anonymous memory: the heap, the kernels' compiled code, arrays
    configs     how many configurations (layer, strategy, kernel, executor, workers) the
                settings panel has shown so far; after a step of STEP_MB or more in the
                engine's memory, the ones first shown since the record before are listed (a
                step that comes with a new one is a first use, bounded by how many there are)
    threads     the dashboard's threads
    fds         the dashboard's open files
    children    live processes under the dashboard (engine, fork server, pool workers)
    shm         /dev/shm entries mapped by the tree (psm_* segments, sem.* semaphores)

With --heap, both processes also report what their allocators hold (heap_probe/, put on
their PYTHONPATH): d_live_mb and e_live_mb are the dashboard's and the engine's live heap
(pymalloc's allocated blocks and glibc's bytes in use), d_slack_mb and e_slack_mb what the
allocators keep beside it (pymalloc's arenas not in use, glibc's free bytes), and the slopes
are given for the live heap too: a resident size that grows while the live heap does not is
the allocators' high-water mark, not data kept.

With --random, the keys are drawn at random (seeded) from every key that changes the
configuration, batch size included. At the end it prints the slope (MB/min, least squares)
of the dashboard's and the engine's memory over the second half of the soak and over its
last LAST_MIN minutes, quits with q and lists what the tree left behind: processes still
running and /dev/shm entries it had mapped that still exist. Not a test: it prints figures.

    python tests/benchmarks/soak_live.py --minutes 30 --every 30 --random
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the census helper
from process_census import memory_split, shm_mapped  # noqa: E402

KEYS = ["t", "e", "plus", "T", "minus", "E", "Down", "Up", "m", "m", "t", "t", "E", "e"]
RANDOM_KEYS = ["t", "T", "e", "E", "k", "plus", "minus", "]", "[", "Down", "Up", "m", "n"]
KEY_S = 1.5
LAST_MIN = 15
STEP_MB = 2.0  # an engine step this large lists the configurations first shown during it


def engine_of(kids: list[psutil.Process]) -> psutil.Process | None:
    for p in kids:
        try:
            if "engine_child" in " ".join(p.cmdline()):
                return p
        except psutil.Error:
            pass
    return None


SETTING = re.compile(r"│ (layer|strategy|kernel|executor|workers) +([\w-]+)  ")  # a settings row


def shown_config(session: str) -> tuple[str, ...] | None:
    """The configuration the settings panel shows (None: not on screen now)."""
    screen = tmux("capture-pane", "-p", "-t", session, check=False).stdout
    found = dict(SETTING.findall(screen))
    return tuple(found.get(k, "") for k in ("layer", "strategy", "kernel", "executor", "workers"))


def slope_mb_per_min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) points, in MB per minute."""
    if len(points) < 2:
        return float("nan")
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mm = sum(m for _, m in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    return 60 * sum((t - mt) * (m - mm) for t, m in points) / var if var else float("nan")


def heap_of(probes: Path, pid: int) -> tuple[float, float]:
    """(live heap MB, allocator slack MB) of process pid as its heap probe last wrote them;
    NaN before its first report."""
    try:
        row = json.loads((probes / f"{pid}.json").read_text())
    except (OSError, ValueError):
        return math.nan, math.nan
    live = row["py_used_mb"] + row.get("c_used_mb", math.nan)
    slack = row["py_arenas_mb"] - row["py_used_mb"] + row.get("c_free_mb", math.nan)
    return live, slack


def t_from(part: list) -> float:
    return part[0][0] if part else math.inf


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
    ap.add_argument("--random", action="store_true", help="random keys (seeded)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set in partui's environment (PYTHONMALLOC=malloc: glibc's allocator, for one)",
    )
    ap.add_argument(
        "--heap",
        action="store_true",
        help="also record both processes' live heap and allocator slack (heap_probe/)",
    )
    args = ap.parse_args()
    if not shutil.which("tmux"):
        raise SystemExit("tmux is needed")
    partui = Path(sys.executable).with_name("partui")
    work = Path(tempfile.mkdtemp(prefix="partui-soak-"))
    env = f"PARTUI_SNAPSHOT_DIR={work / 'snaps'} PARTUI_BASELINE_BOOK={work / 'book.json'}"
    extra = list(args.env)
    probes = work / "heap"
    if args.heap:
        probes.mkdir()
        path = [str(Path(__file__).with_name("heap_probe")), os.environ.get("PYTHONPATH", "")]
        extra += [f"PYTHONPATH={os.pathsep.join(p for p in path if p)}"]
        extra += [f"PARTUI_HEAP_PROBE_DIR={probes}"]
    env = " ".join([env, *(shlex.quote(e) for e in extra)])
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
            f"{'t_s':>6} {'keys':>5} {'rss_mb':>7} {'d_files_mb':>10} {'d_data_mb':>9} "
            f"{'engine_mb':>9} {'files_mb':>8} "
            f"{'data_mb':>7} {'configs':>7} {'threads':>7} {'fds':>5} {'children':>8} {'shm':>4}"
            + (
                f" {'d_live_mb':>9} {'d_slack_mb':>10} {'e_live_mb':>9} {'e_slack_mb':>10}"
                if args.heap
                else ""
            )
        )
        heaps: list[tuple[float, float, float]] = []  # (t, dashboard's live, engine's live)
        import random

        pick = random.Random(args.seed)
        curve: list[tuple[float, float, float]] = []
        configs: set[tuple[str, ...]] = set()
        new_configs: list[tuple[str, ...]] = []  # first shown since the last record
        last_engine_mb = math.nan
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
                engine = engine_of(kids)
                try:
                    engine_mb = engine.memory_info().rss / 2**20 if engine else float("nan")
                except psutil.Error:
                    engine_mb = float("nan")
                rss_mb = dash.memory_info().rss / 2**20
                files_mb, data_mb = memory_split(engine.pid) if engine else (math.nan, math.nan)
                d_files_mb, d_data_mb = memory_split(dash.pid)
                curve.append((now - t0, rss_mb, engine_mb))
                print(
                    f"{now - t0:6.0f} {presses:5d} {rss_mb:7.1f} {d_files_mb:10.1f} "
                    f"{d_data_mb:9.1f} {engine_mb:9.1f} "
                    f"{files_mb:8.1f} {data_mb:7.1f} {len(configs):7d} "
                    f"{dash.num_threads():7d} {dash.num_fds():5d} {len(kids):8d} "
                    f"{len(shm):4d}",
                    end="",
                )
                if args.heap:
                    d_live, d_slack = heap_of(probes, dash.pid)
                    e_live, e_slack = heap_of(probes, engine.pid) if engine else (math.nan,) * 2
                    heaps.append((now - t0, d_live, e_live))
                    print(f" {d_live:9.1f} {d_slack:10.1f} {e_live:9.1f} {e_slack:10.1f}", end="")
                print(flush=True)
                if engine_mb - last_engine_mb >= STEP_MB:  # a step: what was new in it
                    print(f"       step of {engine_mb - last_engine_mb:.1f} MB; new:", end="")
                    print("".join(f"\n         {' '.join(c)}" for c in new_configs) or " none")
                new_configs, last_engine_mb = [], engine_mb
                next_record += args.every
                if now >= end:
                    break
            key = pick.choice(RANDOM_KEYS) if args.random else KEYS[presses % len(KEYS)]
            tmux("send-keys", "-t", args.session, key)
            presses += 1
            time.sleep(KEY_S)
            shown = shown_config(args.session)
            if shown and all(shown) and shown not in configs:
                configs.add(shown)
                new_configs.append(shown)
        print(f"load average at the end {open('/proc/loadavg').read().split()[:3]}")
        half = [c for c in curve if c[0] >= curve[-1][0] / 2]
        # the criterion a long soak is held to: the last LAST_MIN minutes, warm-up long past
        last = [c for c in curve if c[0] >= curve[-1][0] - LAST_MIN * 60]
        for name, part in (("the second half", half), (f"the last {LAST_MIN} minutes", last)):
            print(
                f"slope over {name} ({len(part)} records): dashboard "
                f"{slope_mb_per_min([(t, d) for t, d, _ in part]):+.3f} MB/min, engine "
                f"{slope_mb_per_min([(t, e) for t, _, e in part if e == e]):+.3f} MB/min"
            )
            if args.heap:
                live = [h for h in heaps if h[0] >= t_from(part)]
                print(
                    f"    live heap over {name}: dashboard "
                    f"{slope_mb_per_min([(t, d) for t, d, _ in live if d == d]):+.3f} MB/min, "
                    f"engine {slope_mb_per_min([(t, e) for t, _, e in live if e == e]):+.3f} "
                    "MB/min"
                )
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
