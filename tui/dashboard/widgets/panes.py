"""The dashboard's panes: machine header, layer list, run settings, table of runs."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable, OptionList, Static
from textual.widgets.option_list import Option

from partui.kernels.model.layers import LAYERS, get_layer
from partui.kernels.plan.strategies import settings_warnings
from partui.profiles.records.config import RunConfig
from partui.profiles.system.units import size_text
from partui.tui.dashboard.layout import fit_words
from partui.tui.dashboard.model import Model
from partui.tui.text.safe_text import printable
from partui.tui.text.table import flops_text, ms, ratio_text


def machine_line(info) -> str:
    """The header's line for a MachineInfo."""
    caches = " ".join(
        f"L{c['level']} {size_text(c['size']).replace(' ', '')}"
        for c in info.caches
        if c.get("type") in ("Data", "Unified")
    )
    blas = (
        ", ".join(
            f"{b['internal_api']} {b['version']} ({b['num_threads']} thr)" for b in info.blas or []
        )
        or "no BLAS found"
    )
    if info.blas is None:  # read after the dashboard's first frame
        blas = "BLAS: reading"
    cpu = " ".join(str(info.cpu_model or "?").replace("(R)", "").split())
    return printable(
        f"{cpu} | {info.logical_cores} cores ({info.physical_cores} physical) | {caches} | {blas}"
    )


class Painted(Static):
    """A Static whose size never follows its text (the stylesheet or the layout gives it its
    rows): new text is only repainted. Static.update also lays the whole screen out again,
    and that re-renders every pane and chart: tens of ms on each key press."""

    _painted: Text | None = None

    def paint(self, text: Text) -> None:
        self._painted = text
        self.refresh()

    def render(self):
        return self._painted if self._painted is not None else super().render()


class MachineHeader(Painted):
    """The machine, and what the dashboard itself costs."""

    def show(
        self,
        info: dict,
        self_cpu: float | None,
        engine_cpu: float | None,
        mode: str,
        others: float | None = None,
        width: int = 0,
    ) -> None:
        """CPU figures in % of one core (at most 100 x the logical cores); whole parts only."""
        own = "-" if self_cpu is None else f"{self_cpu:.0f}%"
        eng = "-" if engine_cpu is None else f"{engine_cpu:.0f}%"
        other = "-" if others is None else f"{others:.0f}%"
        room = (width or 10_000) - 2  # the padding
        for parts in (
            (
                "  % of one core: dashboard ",
                own,
                "  engine ",
                eng,
                "  other programs ",
                other,
                "  |  ? help",
            ),
            ("  % core: own ", own, "  engine ", eng, "  others ", other, "  ? help"),
            ("  own ", own, "  engine ", eng, "  others ", other, ""),
        ):
            line1 = Text.assemble(
                ("partui ", "bold"),
                (f" {mode} ", "bold reverse"),
                parts[0],
                (parts[1], "bold"),
                parts[2],
                (parts[3], "bold"),
                parts[4],
                (parts[5], "bold"),
                parts[6],
            )
            if line1.cell_len <= room:
                break
        # the machine line loses whole parts from its end, never half a word
        parts = machine_line(info).split(" | ")
        while len(parts) > 1 and len(" | ".join(parts)) > room:
            parts.pop()
        text = Text("\n").join([line1, Text(" | ".join(parts), "dim")])
        text.no_wrap = True
        text.overflow = "ellipsis"
        self.paint(text)


class LayerList(OptionList):
    """Every layer with its shape and FLOPs at the current batch.

    The chosen layer is the app's state, not this widget's: the list only shows it.
    A user key or click posts `Chosen`; redraws, resizes and refills post nothing,
    so nothing but the user can move the selection.
    """

    BORDER_TITLE = "layers"

    class Chosen(Message):
        """The user picked a layer (a key or a click)."""

        def __init__(self, layer: str) -> None:
            super().__init__()
            self.layer = layer

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._filled: tuple | None = None  # (batch, selected, compact) drawn
        self._pending: list[str] = []  # layers chosen by keys, not yet taken by the app

    def fill(self, batch: int, selected: str) -> None:
        """Show every layer at `batch`, with `selected` highlighted (or the last layer chosen
        by a key the app has not taken yet: keys typed ahead are never rewound)."""
        if self._pending:
            selected = self._pending[-1]
        compact = bool(self.size.width) and self.size.width < 40  # no room for the shapes
        if self._filled and self._filled[:1] + self._filled[2:] == (batch, compact):
            self._filled = (batch, selected, compact)
            self._highlight(selected)
            return
        self._filled = (batch, selected, compact)
        self.clear_options()
        for name, layer in LAYERS.items():
            shape = layer.shape_text().replace(" -> ", "→")
            flops = flops_text(layer.flops(batch)).replace("FLOP", "F")
            label = (
                Text.assemble((f"{name:<10}", "bold"))
                if compact
                else Text.assemble(
                    (f"{name:<10}", "bold"), f" {shape:<19}", (f" {flops:>8}", "dim")
                )
            )
            self.add_option(Option(label, id=name))
        self._highlight(selected)

    def _highlight(self, name: str) -> None:
        names = list(LAYERS)
        index = names.index(name) if name in names else None
        if self.highlighted != index:
            self.highlighted = index

    def on_resize(self) -> None:
        if self._filled:
            batch, selected, _ = self._filled
            self._filled = None  # the width may call for the other form
            self.fill(batch, selected)

    # -- user moves: from the layer shown, never wrapping past either end ------
    def _step(self, step: int) -> None:
        names = list(LAYERS)
        current = self._filled[1] if self._filled else names[0]
        i = names.index(current) if current in names else 0
        chosen = names[max(0, min(len(names) - 1, i + step))]
        # shown at once, so that the next key (held down, or typed ahead) moves on from it
        # before the app has taken this one; the app puts it back if it refuses
        self._filled = (self._filled[0], chosen, self._filled[2]) if self._filled else None
        self._highlight(chosen)
        self._pending.append(chosen)
        self.post_message(self.Chosen(chosen))

    def settled(self, layer: str, taken: bool) -> None:
        """The app took (or refused) the choice `layer`: it is no longer pending."""
        if layer in self._pending:
            del self._pending[: self._pending.index(layer) + 1]
        if not taken:
            self._pending.clear()

    def action_cursor_up(self) -> None:
        self._step(-1)

    def action_cursor_down(self) -> None:
        self._step(1)

    def action_first(self) -> None:
        self._step(-len(LAYERS))

    def action_last(self) -> None:
        self._step(len(LAYERS))

    def action_page_up(self) -> None:
        self._step(-max(1, self.scrollable_content_region.height - 1))

    def action_page_down(self) -> None:
        self._step(max(1, self.scrollable_content_region.height - 1))

    def action_select(self) -> None:  # enter, or a click (which highlights first)
        if self.highlighted is not None:
            chosen = self.get_option_at_index(self.highlighted).id
            self._pending.append(chosen)
            self.post_message(self.Chosen(chosen))


def config_warnings(c, logical_cores: int | None) -> list[str]:
    """Valid but unwise settings of the run configuration `c` (a warning, not a refusal)."""
    return settings_warnings(
        get_layer(c.layer), c.strategy, c.executor, c.workers, c.batch, logical_cores
    )


class SettingsPane(Painted):
    """The run's settings with the key that changes each; an invalid combination is shown as
    such."""

    BORDER_TITLE = "settings"

    class Resized(Message):
        """The settings need another number of lines: the layout gives the rows out again."""

    rows_needed = 9  # lines of text, borders not included
    _rows_width = 0  # the width rows_needed was counted at

    def show(self, model: Model, live: bool, queued: RunConfig | None = None) -> None:
        """`queued`: a run asked for that the engine has not started yet (it may be
        compiling kernels first), shown instead of "idle"."""
        self._shown_for = (model, live, queued)
        c = model.config
        rows = [
            ("layer", c.layer, "↑↓"),
            ("strategy", c.strategy, "t/T"),
            ("kernel", c.kernel, "k"),
            ("executor", c.executor, "e/E"),
            ("workers", str(c.workers), "+/-"),
            ("batch", str(c.batch), "[ ]"),
        ]
        width = max(20, self.size.width or 42)  # the text's width (borders, padding apart)
        text = Text()
        for name, value, key in rows:
            text.append(f"{name:<9}", "dim")
            text.append(f"{value:<13}", "bold")
            text.append(f"{key}\n", "dim")
        # BLAS threads and repeats share a row: one more row for the layers at 80x24
        warmup = f" (+{c.warmup} warm-up)" if width >= 34 else f"+{c.warmup}"
        text.append("BLAS thr ", "dim")
        text.append(f"{c.blas_threads:<3}", "bold")
        text.append("repeats ", "dim")
        text.append(str(c.repeats), "bold")
        text.append(f"{warmup}\n", "dim")
        reason = model.not_applicable
        if reason:
            text.append("✗ not applicable\n", "bold red")
            text.append(reason, "red")
        else:
            text.append("✓ valid combination", "green")
            for warning in config_warnings(c, self.app.machine.logical_cores):
                text.append(f"\n⚠ {warning}", "yellow")
        text.append("\n")
        # one line, whatever it says: a status that wraps now and then would move the layout
        if model.read_only:
            status = (
                f"viewing {printable(Path(model.source or '').name)} (read-only, l: back to live)",
                "bold yellow",
            )
        elif live:  # its runs come several a second: the line stays as it is
            status = ("live mode ON", "bold")
        elif model.running is not None:
            status = (f"running: {model.running.label()}", "yellow")
        elif queued is not None:
            status = (f"queued: {queued.label()}", "yellow")
        else:
            status = ("idle: r run, space live", "")
        text.append(fit_words(status[0], width, clauses=False), status[1])
        if text.plain != getattr(self, "_shown_text", None):  # redraw only on change
            self._shown_text = text.plain
            self.paint(text)
            lines = len(text.wrap(self.app.console, width))
            # a warning that comes and goes with a key does not move the panes (and lay the
            # screen out again) each time: the pane only grows, until the width changes
            grow = lines > self.rows_needed
            if grow or (lines < self.rows_needed and width != self._rows_width):
                self.rows_needed = lines
                self._rows_width = width
                self.post_message(self.Resized())

    def on_resize(self) -> None:
        self._shown_text = None  # wrap again at the new width
        if getattr(self, "_shown_for", None) is not None:
            self.show(*self._shown_for)


RUN_COLUMNS = (
    "#",
    "runs",
    "ok",
    "layer",
    "strategy",
    "kernel",
    "exec",
    "w",
    "batch",
    "median ms",
    "min-max ms",
    "speedup",
    "eff",
    "on-CPU",
    "max err",
)
_SHORT = {
    "kernel": {"vectorized": "vec", "loops": "loop"},
    "exec": {"threads": "thr", "threads-dynamic": "dyn", "processes": "proc", "inline": "inl"},
    "strategy": {
        "channel": "chan",
        "spatial": "spat",
        "filter": "filt",
        "hybrid": "hyb",
        "pipeline": "pipe",
    },
}
_SHORT_HEADER = {"kernel": "kern", "strategy": "strat"}
# What a narrow table gives up first: abbreviations, then whole columns; `ok`, `layer`, `w`,
# `median ms`, `speedup` and `max err` stay at every width.
_NARROWING = [
    ("abbreviate", "kernel"),
    ("abbreviate", "exec"),
    ("drop", "#"),
    ("drop", "batch"),
    ("drop", "eff"),
    ("abbreviate", "strategy"),
    ("drop", "on-CPU"),
    ("drop", "runs"),
    ("drop", "min-max ms"),
    ("drop", "kernel"),
]


def column_plans():
    """Column plans from the widest to the narrowest: (shown columns, abbreviated columns)."""
    shown, short = list(RUN_COLUMNS), set()
    yield tuple(shown), frozenset(short)
    for how, name in _NARROWING:
        if how == "drop":
            shown.remove(name)
        else:
            short.add(name)
        yield tuple(shown), frozenset(short)


class RunsTable(DataTable):
    """One row per run (live mode: per configuration, its runs pooled): configuration,
    median, spread, speedup vs the honest baseline, correctness. Moving the cursor shows
    that run on the timeline. A narrow table abbreviates or drops columns (column_plans)."""

    BORDER_TITLE = "runs (speedup against the best single-worker time of any strategy)"

    MAX_ROWS = 100  # a table of thousands of rows costs the dashboard more than its charts

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self._runs: dict[str, int] = {}  # row key -> the run number it shows (its latest)
        self._rows: list[tuple[str, list]] = []  # (row key, every column's cell) shown
        self._plan = None  # (columns, abbreviated, widths) shown
        self._set_plan(self._choose_plan([]))

    def run_of(self, key: str) -> int | None:
        return self._runs.get(key)

    def show(self, model: Model) -> None:
        """Rebuild the rows (called when runs were added, at most every two seconds)."""
        entries = model.table_entries()[-self.MAX_ROWS :]
        self._runs, self._rows = {}, []
        cursor = None
        for key, number, count, what in entries:
            if count == 0:
                config, error = what
                self._rows.append((key, failure_row(config, error)))
                continue
            self._runs[key] = number
            self._rows.append((key, run_row(number, what, count)))
            if model.selected is not None and number == model.selected:
                cursor = len(self._rows) - 1
        self._fill(cursor)

    def _fill(self, cursor: int | None) -> None:
        # a failure's message is cut to its column rather than widening it
        self._set_plan(self._choose_plan([c for k, c in self._rows if k in self._runs]))
        self.clear()
        columns, short, _ = self._plan
        for key, cells in self._rows:
            self.add_row(*(self._cell(cells, name, short) for name in columns), key=key)
        if self.row_count:
            with self.prevent(DataTable.RowHighlighted):  # not a person's choice
                self.move_cursor(row=self.row_count - 1 if cursor is None else cursor)

    def on_resize(self) -> None:
        if getattr(self, "_plan", None) is not None and self._rows:
            self._fill(self.cursor_row)

    # -- columns that fit ---------------------------------------------------------
    def _choose_plan(self, rows: list[list]):
        room = (self.size.width or self.app.size.width - 2) - 2  # the vertical scrollbar
        for columns, short in column_plans():
            widths = [
                max(
                    [len(_header(name, short))]
                    + [len(_plain(self._cell(r, name, short))) for r in rows]
                )
                for name in columns
            ]
            if sum(w + 2 for w in widths) <= room:  # a cell has one space each side
                break
        return columns, short, tuple(widths)

    @staticmethod
    def _cell(row: list, name: str, short: frozenset):
        cell = row[RUN_COLUMNS.index(name)]
        return _SHORT[name].get(str(cell), cell) if name in short else cell

    def _set_plan(self, plan) -> bool:
        if plan == self._plan:
            return False
        self._plan = plan
        self.clear(columns=True)
        columns, short, widths = plan
        for name, width in zip(columns, widths):
            self.add_column(_header(name, short), width=width)
        return True


def _header(name: str, short: frozenset) -> str:
    return _SHORT_HEADER.get(name, name) if name in short else name


def _plain(cell) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def failure_row(config: RunConfig | None, error: str) -> list:
    c = config
    cells = [
        "-",
        "",
        Text("FAIL", "bold red"),
        *(
            [c.layer, c.strategy, c.kernel, c.executor, str(c.workers), str(c.batch)]
            if c is not None
            else ["?", "", "", "", "", ""]
        ),
    ]
    return cells + [Text(error[:60], "red")] + [""] * (len(RUN_COLUMNS) - len(cells) - 1)


def _num(value: float, fmt: str) -> str:
    return "-" if value != value else fmt.format(value)


def run_row(i: int, row, runs: int = 1) -> list:
    r, st = row.result, row.stats
    c = r.config
    # the timeline's lane labels and this column say the same: over 1 is "1.0+"
    on_cpu = " ".join(ratio_text(v) for v in (r.on_cpu_ratio or [])[:4]) or "-"
    ok = Text("ok", "green") if r.ok else Text("FAIL", "bold red")
    return [
        str(i),
        str(runs) if runs > 1 else "",
        ok,
        c.layer,
        c.strategy,
        c.kernel,
        c.executor,
        str(c.workers),
        str(c.batch),
        ms(r.median_ms),
        f"{ms(r.min_ms)}-{ms(r.max_ms)}",
        _num(st.speedup_honest, "{:.2f}x"),
        _num(100 * st.efficiency, "{:.0f}%"),
        on_cpu,
        f"{r.max_abs_error:.1e}",
    ]
