"""Dashboard benchmark: start-up, key latency, self CPU, and the observer effect.

Drives the installed `partui` under tmux in a 120x40 terminal, as a person would,
and prints figures (it asserts nothing: this machine is shared and noisy).

    python tests/benchmarks/bench_dashboard.py [--keys 40] [--seconds 10] [--rounds 2]
        [--partui PATH] [--session NAME]

`--partui` picks the command to measure (another install: measure before and after a
change back to back, in the same conditions); the load average is printed at the start
and the end, since the machine is shared.

- first frame: from launching the command to the layer list on screen;
- first CPU lines: from launching to the CPU chart drawing samples (no run started);
- idle self CPU: the dashboard process's CPU over a window with no run (its CPU monitor
  and timers only);
- key latency: `+` / `-` pressed while live mode runs each listed configuration,
  time until the pane write that shows the new worker count (a tmux control-mode client
  reports each write; the screen is read only after one);
- self CPU: CPU time of the dashboard process (not its engine child) over a window
  of live mode, as a share of one core;
- observer effect: median repeat time of a configuration under the live dashboard
  (from the snapshot it saves) against headless `partui run` of the same one (as many
  seconds of repeats), interleaved `rounds` times: the median of the rounds' ratios.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

SESSION = "partui-bench"
PARTUI = shutil.which("partui") or "partui"
CPU_WAITING = "waiting for the first CPU samples"


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True).stdout


def screen() -> str:
    return tmux("capture-pane", "-p", "-t", SESSION)


def wait_for(pattern: str, timeout: float = 10.0, poll: float = 0.005) -> float | None:
    t0 = time.monotonic()
    rx = re.compile(pattern)
    while time.monotonic() - t0 < timeout:
        if rx.search(screen()):
            return time.monotonic() - t0
        time.sleep(poll)
    return None


def start(args: list[str], snapdir: str) -> float:
    tmux("kill-session", "-t", SESSION)
    cmd = " ".join(["env -u COLUMNS -u LINES", PARTUI, "--snapshot-dir", snapdir, *args])
    t0 = time.monotonic()
    tmux("new-session", "-d", "-s", SESSION, "-x", "120", "-y", "40", cmd)
    waited = wait_for(r"layers", timeout=20)
    return (time.monotonic() - t0) if waited is not None else float("nan")


def dashboard_process() -> psutil.Process | None:
    pane_pid = int(tmux("display-message", "-p", "-t", SESSION, "#{pane_pid}").strip() or 0)
    if not pane_pid:
        return None
    proc = psutil.Process(pane_pid)
    if "partui" not in " ".join(proc.cmdline()):  # a shell between tmux and partui
        kids = [c for c in proc.children() if "partui" in " ".join(c.cmdline())]
        proc = kids[0] if kids else proc
    return proc


def cpu_of(proc: psutil.Process, seconds: float) -> float:
    """CPU use of `proc` over the next `seconds`, in % of one core."""
    c0 = proc.cpu_times()
    t0 = time.monotonic()
    time.sleep(seconds)
    c1 = proc.cpu_times()
    return 100 * ((c1.user + c1.system) - (c0.user + c0.system)) / (time.monotonic() - t0)


def first_cpu_lines(snapdir: str) -> tuple[float, float]:
    """Seconds from launch to the layer list, and to CPU lines drawn with no run at all."""
    tmux("kill-session", "-t", SESSION)
    cmd = " ".join(["env -u COLUMNS -u LINES", PARTUI, "--snapshot-dir", snapdir])
    t0 = time.monotonic()
    tmux("new-session", "-d", "-s", SESSION, "-x", "120", "-y", "40", cmd)
    frame = wait_for(r"layers", timeout=20)
    lines = None
    while time.monotonic() - t0 < 30:
        text = screen()
        if "CPU %" in text and CPU_WAITING not in text and "100┤" in text:
            lines = time.monotonic() - t0
            break
        time.sleep(0.02)
    return (
        frame if frame is not None else float("nan"),
        lines if lines is not None else float("nan"),
    )


def load() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def stop() -> None:
    tmux("send-keys", "-t", SESSION, "q")
    time.sleep(1.0)
    tmux("kill-session", "-t", SESSION)


class ScreenWatch:
    """Times screen updates without polling: a read-only tmux control-mode client reports
    each write of the pane (%output) as it happens, and the screen is read only then.
    Polling capture-pane every 5 ms instead forks ~150 tmux clients a second, most of a
    core on a 2-core machine: the measuring would compete with what it measures."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            ["tmux", "-C", "attach", "-t", SESSION, "-f", "ignore-size,read-only"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,  # bytes: a write may end inside a UTF-8 character
        )
        self.outputs: list[float] = []  # time.monotonic() of each %output line
        self.cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(b"%output"):
                with self.cv:
                    self.outputs.append(time.monotonic())
                    self.cv.notify_all()

    def wait_for(self, pattern: str, since: float, timeout: float = 3.0) -> float | None:
        """Seconds from `since` to the pane write that first showed `pattern`."""
        rx = re.compile(pattern)
        checked = 0  # outputs already looked at
        with self.cv:
            checked = len([t for t in self.outputs if t < since])
        end = since + timeout
        while time.monotonic() < end:
            with self.cv:
                while len(self.outputs) == checked and time.monotonic() < end:
                    self.cv.wait(end - time.monotonic())
                new = self.outputs[checked:]
                checked = len(self.outputs)
            if new and rx.search(screen()):
                # one of these writes showed it: the last is an upper bound (reads are
                # quick, so a batch is mostly one write)
                return new[-1] - since
        return None

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def key_latencies(n: int) -> list[float]:
    out = []
    watch = ScreenWatch()
    time.sleep(0.3)  # attached
    try:
        for i in range(n):
            m = re.search(r"workers\s+(\d+)", screen())
            if not m:
                time.sleep(0.1)
                continue
            current = int(m.group(1))
            key, target = ("+", current + 1) if i % 2 == 0 else ("-", current - 1)
            t0 = time.monotonic()
            tmux("send-keys", "-t", SESSION, key)
            waited = watch.wait_for(rf"workers\s+{target}\b", since=t0)
            out.append(waited * 1000 if waited is not None else float("inf"))
            time.sleep(0.15)
    finally:
        watch.close()
    return out


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def headless_median(cfg: list[str], repeats: int) -> float:
    out = subprocess.run(
        [PARTUI, "run", *cfg, "--repeat", str(repeats), "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)["median_ms"]


def live_median(cfg: list[str], seconds: float, snapdir: str) -> tuple[float, float, int]:
    """Median repeat time under the live dashboard, and the dashboard's CPU share."""
    start([*cfg, "--live"], snapdir)
    proc = dashboard_process()
    time.sleep(2.0)  # pools warm, first runs done
    self_cpu = cpu_of(proc, seconds)
    before = set(Path(snapdir).glob("*.json"))
    tmux("send-keys", "-t", SESSION, "s")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (set(Path(snapdir).glob("*.json")) - before):
        time.sleep(0.1)
    stop()
    new = sorted(set(Path(snapdir).glob("*.json")) - before)
    if not new:  # too busy a machine: the snapshot was not written within 10 s
        return float("nan"), self_cpu, 0
    data = json.loads(new[-1].read_text())
    times = [t for r in data["runs"] for t in r["times_ms"]]
    return (statistics.median(times) if times else float("nan")), self_cpu, len(times)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--keys", type=int, default=40)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--observer-only", action="store_true", help="measure the observer effect only")
    ap.add_argument(
        "--headless-repeats",
        type=int,
        default=1000,
        help="repeats of the headless run (a few seconds, as long as the live window: a "
        "short run in a fresh process is slower for its first hundreds of repeats)",
    )
    ap.add_argument("--partui", default=PARTUI, help="the partui command to measure")
    ap.add_argument("--session", default=SESSION, help="tmux session name to use")
    args = ap.parse_args()
    globals().update(PARTUI=args.partui, SESSION=args.session)  # used by the helpers above
    if not shutil.which("tmux"):
        print("tmux is needed", file=sys.stderr)
        return 2
    print(f"measuring {PARTUI}; load average {load()}")
    snapdir = tempfile.mkdtemp(prefix="partui-bench-")
    firsts, cpu_lines, idle = [], [], []
    for _ in range(0 if args.observer_only else 3):
        frame, lines = first_cpu_lines(snapdir)
        firsts.append(frame)
        cpu_lines.append(lines)
        proc = dashboard_process()
        time.sleep(1.0)
        idle.append(cpu_of(proc, 4.0) if proc is not None else float("nan"))
        stop()
    if firsts:
        print(
            f"first frame: median {statistics.median(firsts) * 1000:.0f} ms over {len(firsts)} "
            f"launches (max {max(firsts) * 1000:.0f} ms)"
        )
        print(
            f"first CPU lines with no run: median {statistics.median(cpu_lines):.2f} s "
            f"(max {max(cpu_lines):.2f} s; nan: never drawn within 30 s)"
        )
        print(
            "idle self CPU (no run, 4 s windows): "
            f"median {statistics.median(idle):.1f}% of one core"
        )

    configs = {
        "conv2 batch/vectorized/threads w2": [
            "--layer",
            "conv2",
            "--strategy",
            "batch",
            "--executor",
            "threads",
            "--workers",
            "2",
        ],
        "conv2 batch/loops/threads w2 (GIL-bound)": [
            "--layer",
            "conv2",
            "--strategy",
            "batch",
            "--kernel",
            "loops",
            "--executor",
            "threads",
            "--workers",
            "2",
            "--batch",
            "4",
        ],
        "conv2 channel/vectorized/processes w2": [
            "--layer",
            "conv2",
            "--strategy",
            "channel",
            "--executor",
            "processes",
            "--workers",
            "2",
        ],
    }
    print(
        f"\nkey latency ({args.keys} presses of +/- each, live mode running; "
        "screen writes seen by a tmux control-mode client)"
    )
    for name, cfg in ({} if args.observer_only else configs).items():
        start([*cfg, "--live"], snapdir)
        time.sleep(2.0)
        lat = key_latencies(args.keys)
        stop()
        print(
            f"  {name:<42} p50 {pct(lat, 0.5):6.0f} ms   p95 {pct(lat, 0.95):6.0f} ms   "
            f"max {max(lat):6.0f} ms   (load {load()})"
        )

    cfg = configs["conv2 batch/vectorized/threads w2"]
    print(f"\nobserver effect: {' '.join(cfg)}; {args.rounds} interleaved rounds")
    ratios, cpus = [], []
    for _ in range(args.rounds):
        head = headless_median(cfg, args.headless_repeats)
        live, cpu, n = live_median(cfg, args.seconds, snapdir)
        ratios.append(live / head)
        cpus.append(cpu)
        print(
            f"  headless median {head:.3f} ms ({args.headless_repeats} repeats)   live median "
            f"{live:.3f} ms ({n} repeats)   live/headless {live / head:.3f}   "
            f"dashboard CPU {cpu:.1f}% of one core"
        )
    print(
        f"  live / headless, median of the {len(ratios)} rounds' ratios = "
        f"{statistics.median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f})   "
        f"dashboard self CPU median {statistics.median(cpus):.1f}%"
    )
    print(f"load average at the end {load()}")
    shutil.rmtree(snapdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
