"""The help screen: what partui shows, the keys of the tab in view, the columns, the charts."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from partui.tui.text.safe_text import printable

HELP_INTRO = (
    "partui runs one layer of a small CNN under one way of splitting its work, and shows "
    "what it does on this machine: which worker ran when, how busy each core was, the "
    "speedup against the honest baseline (the best single-worker time of any strategy "
    "for that layer and batch, measured here), and whether the answer is still right.\n\n"
    "The engine runs in a child process, so drawing these charts does not steal the "
    "interpreter (GIL) from the kernels. The header shows what the dashboard itself "
    "costs in CPU.\n"
)


KEY_HELP = {  # what each key does, said in full (the key bar and palette use short names)
    "run_once": "run the configuration once: warm-ups, then timed repeats, checked",
    "toggle_live": "live mode: run it again and again; a change applies from the next run",
    "cancel": "stop what this tab runs: the run, live mode and sweep on the profile tab, "
    "the experiment on the lab",
    "cycle('strategy', 1)": "next strategy (how the work is cut)",
    "cycle('strategy', -1)": "previous strategy",
    "cycle('kernel', 1)": "next kernel: loops or vectorized",
    "cycle('executor', 1)": "next executor: inline, threads, processes, blas",
    "cycle('executor', -1)": "previous executor",
    "workers(1)": "one worker more (= too)",
    "workers(-1)": "one worker less",
    "batch(1)": "double the batch",
    "batch(-1)": "halve the batch",
    "repeat(-1)": "one timed repeat less",
    "repeat(1)": "one timed repeat more",
    "sweep": "run the layer and strategy at 1, 2, ... workers up to the core count",
    "save": "save the session as a snapshot",
    "export": "snapshot + Perfetto trace + CSV + SVG screenshot",
    "browser": "saved snapshots: open one read-only, mark two (A, B) and compare",
    "toggle_tab": "switch between the profile tab and the lab",
    "back_to_live": "leave a snapshot, back to the live session",
    "next_chart": "compact layout (small terminal): show the next chart",
    "help": "this help",
    "quit": "quit (the engine and its workers stop)",
}
HELP_COLUMNS = [
    ("ok", "the output matches the float64 reference within the tolerance (else FAIL)"),
    ("w", "workers: threads or processes (BLAS threads for the blas executor)"),
    ("median ms", "median time of the timed repeats (warm-ups not counted)"),
    ("min-max ms", "the spread: fastest and slowest repeat"),
    (
        "speedup",
        "against the honest baseline: the best single-worker median of any "
        "strategy for this layer, kernel and batch, measured on this machine (this "
        "session or the machine's baseline book); 1.00x = as fast as that",
    ),
    ("eff", "efficiency = speedup / workers; 100% = every worker fully useful"),
    (
        "on-CPU",
        "per worker, CPU time / busy time. 1.00 = it computed all the time it was "
        "busy; below 1 it waited: for the GIL, a lock, memory, or a core another "
        "program held",
    ),
    ("max err", "largest absolute difference from the float64 reference"),
    ("imbalance", "(partui run / show) busiest worker's busy time / the mean; 1.0 = even"),
    (
        "kern, exec, strat",
        "narrow tables abbreviate: vec = vectorized, thr = threads, "
        "proc = processes, chan = channel, spat = spatial",
    ),
]
HELP_CHARTS = [
    (
        "worker timeline",
        "one lane per worker, █ where it ran a task, ms since the run "
        "started: gaps are idle workers, a long lane is the straggler",
    ),
    ("CPU per core", "% busy of each logical core, from the engine's sampler, the last 30 s"),
    (
        "speedup",
        "speedup against workers: the ideal line, the measured points and an "
        "Amdahl fit (s = serial fraction, its ceiling 1/s)",
    ),
    ("run times", "every timed repeat, newest on the right: the noise you are reading"),
]


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 100; max-width: 95%; height: 90%;
        border: round $accent; background: $surface; padding: 0 1; }
    """

    def __init__(self, bindings, snapshot_dir: Path):
        super().__init__()
        self._keys = bindings
        self._snapshot_dir = snapshot_dir

    def compose(self) -> ComposeResult:
        from partui.tui.dashboard.keys import key_label

        text = Text(HELP_INTRO)
        keys = [(key_label(b.key), KEY_HELP.get(b.action, b.description)) for b in self._keys]
        keys += [
            ("↑ ↓", "choose a layer (layer list); scroll elsewhere"),
            ("enter", "lab: run the experiment under the cursor"),
            ("tab", "next pane"),
            ("^p", "command palette (every action, by name)"),
        ]
        room = min(100, int(self.app.size.width * 0.95)) - 5  # border, padding, scrollbar
        _section(text, "Keys", keys, 8, room)
        _section(text, "Columns of the runs table", HELP_COLUMNS, 18, room)
        _section(text, "Charts", HELP_CHARTS, 16, room)
        text.append(
            f"\nSnapshots are saved in {printable(self._snapshot_dir)}\n"
            "(change with --snapshot-dir DIR or PARTUI_SNAPSHOT_DIR).\n"
        )
        text.append("\nescape closes this help.", "dim")
        with VerticalScroll():
            yield Static(text)


def _section(text: Text, title: str, rows: list[tuple[str, str]], width: int, room: int) -> None:
    """A titled list of (name, explanation): names in one column, explanations wrapped beside."""
    import textwrap

    text.append(f"\n{title}\n", "bold")
    indent = " " * (2 + width)
    for name, what in rows:
        text.append(f"  {name:<{width}}", "bold cyan")
        lines = textwrap.wrap(what, max(20, room - len(indent)))
        text.append(lines[0] + "\n" + "".join(f"{indent}{line}\n" for line in lines[1:]))
