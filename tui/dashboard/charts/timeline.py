"""The worker timeline of one repeat: which worker ran which task when, and where it idled.

Data first (`TimelineView`, built from spans: unit-tested against hand-built spans), then
the text it is drawn as (`timeline_lines`), one character cell per time slice. A task is a
box in its phase's colour, consecutive tasks on a lane alternate two shades so their
boundary shows, idle time is an empty dotted lane, and a lane whose worker was on the CPU
for less than half its busy time (waiting for the GIL, memory, or another program) is drawn
hatched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rich.text import Text

from partui.profiles.records.config import RunConfig
from partui.tui.text.repeat_pick import median_index as median_repeat
from partui.tui.text.repeat_pick import own_repeats
from partui.tui.text.safe_text import printable
from partui.tui.text.table import ratio_text, short_ms

WAITING = 0.5  # on-CPU ratio below which a lane is drawn as mostly waiting
LABEL_WIDTH = 15  # "w0    73% 0.17 ": worker, busy share, on-CPU ratio
# (shade A, shade B) per phase; pipeline stages use them in turn
PHASE_COLORS = [
    ("#4fb3e8", "#2a7ab0"),
    ("#f0c040", "#b08a1a"),
    ("#7cd67c", "#3f9a3f"),
    ("#e07ce0", "#a04aa0"),
    ("#f08050", "#b05530"),
    ("#a0a0f0", "#6060c0"),
]


@dataclass
class Lane:
    worker: int
    spans: list  # this worker's spans in the repeat, by start time
    busy_share: float  # summed task time / the repeat's extent
    on_cpu: float  # CPU time / busy time over the run (NaN: not measured)

    @property
    def waiting(self) -> bool:
        return self.on_cpu == self.on_cpu and self.on_cpu < WAITING


@dataclass
class TimelineView:
    run: int  # the run's number, as in the runs table
    label: str  # its configuration
    repeat: int  # the repeat shown
    repeats: list[int]  # the timed repeats one can step through
    median_repeat: int | None  # None while the run goes
    wall_ms: float | None  # the repeat's measured wall time
    t0: int  # the repeat's extent: first task start .. last task end (ns)
    t1: int
    lanes: list[Lane]
    phase_names: dict[int, str] = field(default_factory=dict)
    running: bool = False
    note: str = ""
    # the repeat's hand-out and collection (wall minus the busiest worker's tasks) and the
    # woken workers' median wake-up, in µs: for executors that record wake-ups (`threads`)
    fixed_us: float | None = None
    wake_us: float | None = None

    @property
    def extent_ms(self) -> float:
        return (self.t1 - self.t0) / 1e6


def phase_names(config: RunConfig) -> dict[int, str]:
    """What each span phase is: filter's reduce, and each pipeline stage's layers."""
    strategy = config.strategy
    if config.executor == "dask":
        from partui.kernels.plan.pass_axes import TRANSFER

        return {0: "compute", TRANSFER: "transfer"}
    if strategy == "filter":
        return {0: "compute", 1: "reduce"}
    if strategy == "pipeline":
        from partui.kernels.model.layers import NETWORK
        from partui.kernels.plan.strategies import pipeline_stages

        stages = pipeline_stages(NETWORK, config.workers)
        return {i: "+".join(layer.name for layer in stage) for i, stage in enumerate(stages)}
    return {0: "compute"}


def build_view(
    config: RunConfig,
    run: int,
    spans,
    repeat: int,
    repeats: list[int],
    median: int | None,
    wall_ms: float | None,
    on_cpu: list[float],
    running: bool = False,
    start_ns: int | None = None,
) -> TimelineView:
    """The lanes of one repeat: `spans` may hold every repeat; warm-ups never count.

    With the repeat's start (and `wall_ms`) known, the axis spans the whole repeat as timed,
    so handing tasks out before the first one starts and collecting them after the last
    one ends show as idle time; without it, the tasks' own extent."""
    chosen = [s for s in spans if s.repeat == repeat and repeat >= 0]
    workers = config.workers
    top = max((s.worker for s in chosen), default=-1) + 1
    note = ""
    if config.executor == "blas":  # BLAS's own threads have no spans: one lane
        lanes_n = max(top, 1)
        note = f"BLAS runs {workers} threads inside each task (not drawn)"
    elif config.strategy == "pipeline":
        lanes_n = max(top, len(phase_names(config)))
    else:
        lanes_n = max(workers, top)
    t0 = min((s.start_ns for s in chosen), default=0)
    t1 = max((s.end_ns for s in chosen), default=0)
    if start_ns and wall_ms is not None and chosen:
        t0 = min(t0, start_ns)
        t1 = max(t1, start_ns + int(wall_ms * 1e6))
    extent = max(t1 - t0, 1)
    lanes = []
    for w in range(lanes_n):
        mine = sorted((s for s in chosen if s.worker == w), key=lambda s: s.start_ns)
        busy = sum(s.end_ns - s.start_ns for s in mine)
        ratio = on_cpu[w] if w < len(on_cpu) else float("nan")
        lanes.append(Lane(w, mine, busy / extent if chosen else 0.0, ratio))
    fixed = wake = None
    if wall_ms is not None and any(s.wake_ns >= 0 for s in chosen):
        busiest = max(sum(s.end_ns - s.start_ns for s in lane.spans) for lane in lanes)
        fixed = max(0.0, wall_ms * 1e3 - busiest / 1e3)
        woken = sorted(s.wake_ns / 1e3 for s in chosen if s.wake_ns >= 0 and s.worker > 0)
        wake = woken[(len(woken) - 1) // 2] if woken else None
        if not note:  # shown with the legend, in the pane's spare rows
            note = f"hand-out {fixed:.0f} µs/repeat" + (
                f" · wake {wake:.0f} µs" if wake is not None else ""
            )
    return TimelineView(
        run,
        config.label(),
        repeat,
        list(repeats),
        median,
        wall_ms,
        t0,
        t1,
        lanes,
        phase_names(config),
        running,
        note,
        fixed,
        wake,
    )


def view_of_result(result, number: int, choice: int | None) -> TimelineView:
    own, starts = own_repeats(result)
    repeats = list(range(len(own)))
    median = median_repeat(own)
    repeat = choice if choice in repeats else median
    if repeat is None:
        repeat = -1
    wall = own[repeat] if 0 <= repeat < len(own) else None
    view = build_view(
        result.config,
        number,
        result.spans,
        repeat,
        repeats,
        median,
        wall,
        list(result.on_cpu_ratio or []),
        start_ns=starts[repeat] if 0 <= repeat < len(starts) else None,
    )
    if getattr(result, "dask", None):
        view.note = printable(dask_note(result.dask))  # a snapshot's text
    return view


def dask_note(d: dict) -> str:
    """Where a Dask run ran: the scheduler, whose cluster, the Dask dashboard if served."""
    whose = "LocalCluster" if d.get("cluster") == "local" else "external cluster"
    board = d.get("dashboard") or "none (bokeh not installed)"
    moved = (d.get("bytes_out_per_repeat", 0) + d.get("bytes_back_per_repeat", 0)) / 2**20
    return (
        f"Dask {d.get('scheduler')} ({whose}, {len(d.get('workers', []))} workers)  "
        f"dashboard {board}  {moved:.2f} MiB moved per repeat"
    )


def view_of_running(
    cfg, number: int, spans, done: list[int], choice: int | None, windows: dict | None = None
) -> TimelineView:
    """`windows`: repeat -> (start_ns, wall_ms) of the repeats finished so far."""
    repeat = choice if choice in done else done[-1]
    start, wall = (windows or {}).get(repeat, (None, None))
    return build_view(cfg, number, spans, repeat, list(done), None, wall, [], True, start)


# ---- drawing ------------------------------------------------------------------------


def time_unit(extent_ns: float) -> tuple[str, float]:
    """A readable unit for an axis this long: (name, nanoseconds per unit)."""
    if extent_ns < 2e6:
        return "µs", 1e3
    if extent_ns < 5e9:
        return "ms", 1e6
    return "s", 1e9


def nice_ticks(extent: float, most: int) -> list[float]:
    """Round tick values 0, step, 2 step ... within [0, extent]: at least two when the
    extent allows, at most `most`."""
    if extent <= 0 or most < 2:
        return [0.0]
    mag = 10 ** math.floor(math.log10(extent))
    steps = [m * mag * f for f in (0.01, 0.1, 1) for m in (1, 2, 2.5, 5)]
    fitting = [st for st in steps if int(extent / st + 1e-9) + 1 <= most]
    step = min(fitting) if fitting else steps[-1]
    if int(extent / step + 1e-9) < 1:  # only 0: the largest step that still gives a second
        step = max(st for st in steps if st <= extent)
    return [round(i * step, 12) for i in range(int(extent / step + 1e-9) + 1)]


def lane_cells(lane: Lane, t0: int, extent: int, cols: int) -> list[tuple[str, str]]:
    """(character, style) per column of one lane."""
    cover = [0.0] * cols
    owner: list[tuple[int, float] | None] = [None] * cols  # (span index, its overlap)
    for i, s in enumerate(lane.spans):
        a = (s.start_ns - t0) / extent * cols
        b = (s.end_ns - t0) / extent * cols
        for c in range(max(0, int(a)), min(cols, math.ceil(b))):
            overlap = min(b, c + 1) - max(a, c)
            if overlap <= 0:
                continue
            cover[c] += overlap
            held = owner[c]
            if held is None or overlap > held[1]:
                owner[c] = (i, overlap)
    starts = set()  # the first cell of a task right after another: its boundary shows
    for i in range(1, len(lane.spans)):
        a = int((lane.spans[i].start_ns - t0) / extent * cols)
        prev_end = (lane.spans[i - 1].end_ns - t0) / extent * cols
        if a - prev_end >= 1:
            continue  # idle cells between them already show the boundary
        for c in (a, a + 1):
            held = owner[c] if 0 <= c < cols else None
            if held is not None and held[0] == i:
                starts.add(c)
                break
    out = []
    for c in range(cols):
        held = owner[c]
        if held is None:
            out.append(("·", "grey37"))
            continue
        i, _ = held
        s = lane.spans[i]
        shades = PHASE_COLORS[s.phase % len(PHASE_COLORS)]
        style = shades[i % 2]
        if c in starts:
            out.append(("▐", style))
        elif cover[c] >= 0.5:
            out.append(("▒" if lane.waiting else "█", style))
        else:  # a sliver: which half of the cell holds the task
            mid = ((s.start_ns + s.end_ns) / 2 - t0) / extent * cols
            out.append(("▌" if mid < c + 0.5 else "▐", style))
    return out


def timeline_lines(
    view: TimelineView | None, width: int, height: int, keys: str = ",/. repeat"
) -> Text:
    """The whole timeline as text for a pane `width` x `height`; `keys`: the legend's hint
    of the keys that step the repeat ("" for print)."""
    if view is None:
        return Text(
            "no run yet: r runs once, space starts live mode, w sweeps workers", justify="center"
        )
    if not any(lane.spans for lane in view.lanes):
        return Text(f"run {view.run}: no tasks recorded in repeat {view.repeat}", justify="center")
    width = max(width, LABEL_WIDTH + 10)
    cols = width - LABEL_WIDTH
    extent = max(view.t1 - view.t0, 1)
    unit, per = time_unit(extent)
    lines: list[Text] = [_head(view, cols)]
    room = max(1, height - 3)  # header, axis, legend
    lanes = view.lanes
    shown = lanes if len(lanes) <= room else lanes[: room - 1]
    for lane in shown:
        ratio = ratio_text(lane.on_cpu)
        name = f"w{lane.worker}"[:4]
        label = Text(
            f"{name:<4} {lane.busy_share:>4.0%} {ratio:>4} ", "bold yellow" if lane.waiting else ""
        )
        label.truncate(LABEL_WIDTH, pad=True)
        row = Text()
        row.append_text(label)
        for ch, style in lane_cells(lane, view.t0, extent, cols):
            row.append(ch, style)
        lines.append(row)
    if len(shown) < len(lanes):
        hidden = lanes[len(shown) :]
        busy = sum(lane.busy_share for lane in hidden) / len(hidden)
        lines.append(
            Text(f"+{len(hidden)} more workers (mean busy {busy:.0%}), not drawn", "italic")
        )
    lines.append(_axis(extent / per, unit, cols))
    spare = max(0, room - len(shown) - (len(shown) < len(lanes)))
    lines += _legend(view, width, 1 + spare, keys)
    for line in lines:
        line.no_wrap = True
        line.overflow = "ellipsis"
        line.truncate(width, overflow="ellipsis")
    out = Text("\n").join(lines)
    out.no_wrap = True
    return out


def _axis(extent: float, unit: str, cols: int) -> Text:
    """Tick values under the lanes, their unit in the label column."""
    ticks = nice_ticks(extent, max(2, cols // 6))
    row = [" "] * cols
    for v in ticks:
        c = min(cols - 1, int(round(v / extent * cols))) if extent > 0 else 0
        text = f"{v:g}"
        if c + len(text) > cols:
            c = cols - len(text)
        if all(ch == " " for ch in row[max(0, c - 1) : c + len(text) + 1]):
            row[c : c + len(text)] = list(text)
    axis = Text(f"{unit:>{LABEL_WIDTH - 1}} ", "dim")
    axis.append("".join(row), "dim")
    return axis


def _head(view: TimelineView, cols: int) -> Text:
    """The column names over the lane labels, then the run and repeat in the room left:
    the longest wording that fits, so nothing that names the picture is cut."""
    which = "median" if view.repeat == view.median_repeat else "latest" if view.running else ""
    n = len(view.repeats)
    place = f"{view.repeats.index(view.repeat) + 1}/{n}" if view.repeat in view.repeats else "?"
    wall = f"{short_ms(view.wall_ms)} ms" if view.wall_ms is not None else ""
    words = [
        f"run {view.run} · rep {place} {which} · {wall}",
        f"run {view.run} rep {place} {which[:3]} {wall}",
        f"run {view.run} {place} {which[:3]} {wall}",
        f"run {view.run} {place} {wall}",
        f"r{view.run} {place}",
    ]
    fit = next((w for w in words if len(" ".join(w.split())) <= cols), words[-1])
    head = Text(f"{'':4} {'busy':>4} {'cpu':>4} ", "dim")
    head.append(" ".join(fit.split()).strip(" ·"), "bold")
    return head


def _legend(view: TimelineView, width: int, rows: int = 1, keys: str = "") -> list[Text]:
    """The key to the colours, packed into up to `rows` lines of `width`; what does not
    fit ends the last line with an ellipsis."""
    items: list[Text] = []
    phases = sorted({s.phase for lane in view.lanes for s in lane.spans})
    for p in phases:
        color = PHASE_COLORS[p % len(PHASE_COLORS)]
        item = Text()
        item.append("██", f"{color[0]}")
        item.append("█", f"{color[1]}")
        item.append(f" {view.phase_names.get(p, f'phase {p}')}")
        items.append(item)
    for words in (
        "· idle",
        "▒ cpu<0.5: waiting",
        "busy: share of the repeat",
        "cpu: CPU time / busy time",
        keys,
    ):
        if words:
            items.append(Text(words, "dim"))
    if view.note:
        items.append(Text(view.note, "dim"))
    lines: list[Text] = [Text()]
    for item in items:
        line = lines[-1]
        sep = 2 if line.cell_len else 0
        if line.cell_len + sep + item.cell_len > width and line.cell_len and len(lines) < rows:
            lines.append(Text())
            line, sep = lines[-1], 0
        line.append(" " * sep)
        line.append_text(item)
    for line in lines:
        line.truncate(width, overflow="ellipsis")
    return lines
