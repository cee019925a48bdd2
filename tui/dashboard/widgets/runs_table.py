"""The runs table: one row per run, its columns narrowed to fit."""

from __future__ import annotations

from typing import cast

from rich.text import Text
from textual.widgets import DataTable

from partui.profiles.records.config import RunConfig
from partui.profiles.roofline.placing import place_result
from partui.profiles.roofline.roofs import RoofSet
from partui.tui.dashboard.model import Model
from partui.tui.text.table import ms, ratio_text

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
    "vs 1w",
    "eff",
    "on-CPU",
    "max err",
    "of roof",
)
_SHORT = {
    "kernel": {"vectorized": "vec", "loops": "loop"},
    "of roof": {},  # its header only
    "exec": {"threads": "thr", "threads-dynamic": "dyn", "processes": "proc", "inline": "inl"},
    "strategy": {
        "channel": "chan",
        "spatial": "spat",
        "filter": "filt",
        "hybrid": "hyb",
        "pipeline": "pipe",
    },
}
_SHORT_HEADER = {"kernel": "kern", "strategy": "strat", "of roof": "roof"}
# What a narrow table gives up first: abbreviations, then whole columns; `ok`, `layer`, `w`,
# `median ms`, `speedup` and `max err` stay at every width.
_NARROWING = [
    ("drop", "vs 1w"),
    ("abbreviate", "kernel"),
    ("abbreviate", "exec"),
    ("abbreviate", "of roof"),
    ("drop", "of roof"),
    ("drop", "#"),
    ("drop", "batch"),
    ("drop", "eff"),
    ("abbreviate", "strategy"),
    ("drop", "on-CPU"),
    ("drop", "runs"),
    ("drop", "min-max ms"),
    ("drop", "kernel"),
]

# shown only when a row has something in them (no 1-worker twin: nothing to compare with)
_IF_FILLED = {"vs 1w"}

# (shown columns, abbreviated columns, their widths)
Plan = tuple[tuple[str, ...], frozenset[str], tuple[int, ...]]


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
        self._plan: Plan | None = None  # (columns, abbreviated, widths) shown
        self._set_plan(self._choose_plan([]))

    def run_of(self, key: str) -> int | None:
        return self._runs.get(key)

    def show(self, model: Model, roofs: RoofSet | None = None) -> None:
        """Rebuild the rows (called when runs were added, at most every two seconds)."""
        entries = model.table_entries()[-self.MAX_ROWS :]
        self._runs, self._rows = {}, []
        cursor = None
        for key, number, count, what in entries:
            if count == 0:
                config, error = cast(tuple[RunConfig | None, str], what)
                self._rows.append((key, failure_row(config, error)))
                continue
            self._runs[key] = number
            self._rows.append((key, run_row(number, what, count) + [roof_cell(what, roofs)]))
            if model.selected is not None and number == model.selected:
                cursor = len(self._rows) - 1
        self._fill(cursor)

    def _fill(self, cursor: int | None) -> None:
        # a failure's message is cut to its column rather than widening it
        self._set_plan(self._choose_plan([c for k, c in self._rows if k in self._runs]))
        self.clear()
        assert self._plan is not None  # set just above
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
            columns = tuple(
                c for c in columns if c not in _IF_FILLED or any(_plain(r[_at(c)]) for r in rows)
            )
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
        cell = row[_at(name)]
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


def _at(name: str) -> int:
    return RUN_COLUMNS.index(name)


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
    if r.conditions is not None and r.conditions.busy:  # other programs held over half a core
        ok.append(" busy", "yellow")
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
        # against the same configuration at 1 worker, from both runs' repeats: the speedup
        # with its interval where significant, else n.s. / spread / few (significance.py)
        st.vs_1w.short() if st.vs_1w is not None else "",
        _num(100 * st.efficiency, "{:.0f}%"),
        on_cpu,
        f"{r.max_abs_error:.1e}",
    ]


def roof_cell(row, roofs: RoofSet | None):
    """Achieved / attainable under this machine's roofs; over 100% in red (a roof measured
    too low); "-" without roofs or for a pass other than forward."""
    point = place_result(roofs, row.result) if roofs is not None else None
    if point is None:
        return "-"
    text = f"{point.of_roof:.0%}"
    return Text(text, "bold red") if point.of_roof > 1 else text
