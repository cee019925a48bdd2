"""End to end: the installed `partui` in a real terminal (tmux), driven by keys, read off
the screen."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import uuid

import psutil
import pytest
from waiting import wait_until

PARTUI = shutil.which("partui")
pytestmark = pytest.mark.skipif(
    not (shutil.which("tmux") and PARTUI), reason="needs tmux and the installed partui command"
)


class Terminal:
    def __init__(self, command: str, width: int = 120, height: int = 40):
        self.name = f"partui-test-{uuid.uuid4().hex[:8]}"
        # A COLUMNS / LINES in the environment would override the pane's real size.
        subprocess.run(
            [
                "tmux",
                "new-session",
                "-d",
                "-s",
                self.name,
                "-x",
                str(width),
                "-y",
                str(height),
                f"env -u COLUMNS -u LINES {command}; echo EXITED $?; sleep 30",
            ],
            check=True,
        )

    def screen(self) -> str:
        return subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True
        ).stdout

    def press(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def wait_for(self, pattern: str, timeout: float = 20.0) -> re.Match:
        rx = re.compile(pattern)
        return wait_until(
            lambda: rx.search(self.screen()),
            timeout,
            interval=0.1,
            message=lambda: f"{pattern!r} never appeared; screen:\n{self.screen()}",
        )

    def processes(self) -> list[psutil.Process]:
        out = subprocess.run(
            ["tmux", "display-message", "-p", "-t", self.name, "#{pane_pid}"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        shell = psutil.Process(int(out))
        return [p for p in shell.children(recursive=True) if p.name() != "sleep"]

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def test_newcomer_session(tmp_path):
    term = Terminal(f"{PARTUI} --snapshot-dir {tmp_path} --layer conv2 --batch 8")
    try:
        term.wait_for(r"layers")
        term.wait_for(r"strategy\s+batch")
        running = term.processes()
        assert running, "partui is not running"
        term.press("t")
        term.wait_for(r"strategy\s+channel")
        term.press("r")
        term.wait_for(r"\bok(\s+busy)?\s+conv2\s+channel\s+(vectorized|vec)\s+(threads|thr)\b")
        term.press("s")
        saved = wait_until(
            lambda: list(tmp_path.glob("*.json")), 10, interval=0.1, message="s saved no snapshot"
        )
        term.press("o")  # the snapshot browser lists it; enter opens it read-only
        term.wait_for(re.escape(saved[0].name))
        term.press("Enter")
        term.wait_for(r"SNAPSHOT")
        term.press("l")
        term.wait_for(r"\bidle\b")
        running = term.processes()  # the dashboard and its engine process
        term.press("q")
        term.wait_for(r"EXITED 0", timeout=10)
        gone, alive = psutil.wait_procs(running, timeout=5)
        assert not alive, f"left behind: {[p.cmdline() for p in alive]}"
        assert "Traceback" not in term.screen()
    finally:
        term.close()


def test_open_a_snapshot_file_directly(tmp_path):
    from partui.profiles.records.config import RunConfig
    from partui.profiles.run.engine import Engine
    from partui.profiles.store.snapshot import Snapshot, save

    with Engine() as engine:
        result = engine.run(RunConfig("pool1", strategy="channel", workers=2, batch=4, repeats=2))
    path = save(Snapshot.from_results([result], note="e2e"), tmp_path / "one.json")
    term = Terminal(f"{PARTUI} {path}")
    try:
        term.wait_for(r"SNAPSHOT")
        term.wait_for(r"\bok(\s+busy)?\s+pool1\s+channel")  # busy: others held the CPU
        term.press("End")  # replay: the slowest of its two timed repeats, said in words
        term.wait_for(r"SNAPSHOT · run 1, repeat [12] of 2, .* ms \(median .*\), the slowest")
        term.press("Home")
        term.wait_for(r"repeat [12] of 2, .*, the fastest")
        term.press("q")
        term.wait_for(r"EXITED 0", timeout=10)
    finally:
        term.close()


def test_every_size_reaches_network_and_cuts_no_word(tmp_path):
    """T then ↓ repeated reaches network, and nothing is cut mid-word, at 3 terminal sizes."""
    from screen_check import known_titles, placeholders, problems

    term = Terminal(f"{PARTUI} --snapshot-dir {tmp_path} --layer conv2 --strategy none", 80, 24)
    try:
        term.wait_for(r"strategy\s+none")
        term.press("T")
        term.wait_for(r"strategy\s+pipeline")
        for _ in range(12):
            term.press("Down")
        term.wait_for(r"│ layer\s+network")
        term.wait_for(r"✓ valid")
        for width, height in [(80, 24), (120, 40), (200, 60)]:
            subprocess.run(
                ["tmux", "resize-window", "-t", term.name, "-x", str(width), "-y", str(height)],
                check=True,
            )
            term.wait_for(r"│ layer\s+network")
            time.sleep(2.5)  # the charts redraw at most once a second
            screen = term.screen()
            assert len(screen.splitlines()[0]) <= width
            found = problems(screen, known_titles(), placeholders())
            assert not found, f"{width}x{height}:\n{screen}\n{found}"
            assert re.search(r"│ layer\s+network", screen) and "✓ valid" in screen
        term.press("q")
        term.wait_for(r"EXITED 0", timeout=10)
    finally:
        term.close()


def test_closing_the_terminal_ends_the_dashboard_and_its_engine():
    """SIGHUP because the terminal went away (tmux killed the window): the dashboard and its
    engine end within seconds, even when Textual cannot write to the dead terminal."""
    terms = [Terminal(f"{PARTUI} --layer pool1 --live") for _ in range(3)]
    family: list[psutil.Process] = []
    try:
        for t in terms:
            t.wait_for(r"LIVE")
            procs = t.processes()
            family += procs + [c for p in procs for c in p.children(recursive=True)]
        assert family
        for t in terms:
            subprocess.run(["tmux", "kill-session", "-t", t.name], check=False)
        gone, alive = psutil.wait_procs(family, timeout=15)
        assert not alive, [p.cmdline() for p in alive if p.is_running()]
    finally:
        for t in terms:
            subprocess.run(["tmux", "kill-session", "-t", t.name], capture_output=True)
        for p in family:  # a hung one must not outlive the test
            try:
                p.kill()
            except psutil.Error:
                pass
