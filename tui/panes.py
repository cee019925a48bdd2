"""The dashboard's panes: machine header, layer list, run settings, table of runs."""
from __future__ import annotations

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable, OptionList, Static
from textual.widgets.option_list import Option

from partui.kernels.layers import LAYERS

from .model import Model
from .safe_text import printable
from .table import bytes_text, flops_text, ms


def machine_line(info: dict) -> str:
    caches = " ".join(f"L{c['level']} {bytes_text(c['size']).replace(' ', '')}"
                      for c in info.get("caches", []) if c.get("type") in ("Data", "Unified"))
    blas = ", ".join(f"{b['internal_api']} {b['version']} ({b['num_threads']} thr)"
                     for b in info.get("blas", [])) or "no BLAS found"
    cpu = " ".join(str(info.get("cpu_model", "?")).replace("(R)", "").split())
    return (f"{cpu} | {info.get('logical_cores')} cores ({info.get('physical_cores')} physical) "
            f"| {caches} | {blas}")


class MachineHeader(Static):
    """The machine, and what the dashboard itself costs."""

    def show(self, info: dict, self_cpu: float | None, engine_cpu: float | None,
             mode: str, others: float | None = None) -> None:
        """CPU figures in % of one core (at most 100 x the logical cores)."""
        own = "-" if self_cpu is None else f"{self_cpu:.0f}%"
        eng = "-" if engine_cpu is None else f"{engine_cpu:.0f}%"
        other = "-" if others is None else f"{others:.0f}%"
        line1 = Text.assemble(
            ("partui ", "bold"), (f" {mode} ", "bold reverse"),
            "  % of one core: dashboard ", (own, "bold"), "  engine ", (eng, "bold"),
            "  other programs ", (other, "bold"), "  |  ? help")
        text = Text("\n").join([line1, Text(machine_line(info), "dim")])
        text.no_wrap = True
        text.overflow = "ellipsis"
        self.update(text)


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

    def fill(self, batch: int, selected: str) -> None:
        """Show every layer at `batch`, with `selected` highlighted."""
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
            label = (Text.assemble((f"{name:<10}", "bold")) if compact
                     else Text.assemble((f"{name:<10}", "bold"), f" {shape:<19}",
                                        (f" {flops:>8}", "dim")))
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
        self.post_message(self.Chosen(names[max(0, min(len(names) - 1, i + step))]))

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
            self.post_message(self.Chosen(self.get_option_at_index(self.highlighted).id))


class SettingsPane(Static):
    """The run's settings with the key that changes each; an invalid combination is shown as such."""

    BORDER_TITLE = "settings"

    def show(self, model: Model, live: bool) -> None:
        c = model.config
        rows = [
            ("layer", c.layer, "↑↓"),
            ("strategy", c.strategy, "t/T"),
            ("kernel", c.kernel, "k"),
            ("executor", c.executor, "e/E"),
            ("workers", str(c.workers), "+/-"),
            ("batch", str(c.batch), "[ ]"),
            ("BLAS thr", str(c.blas_threads), ""),
            ("repeats", f"{c.repeats} (+{c.warmup} warm-up)", ""),
        ]
        text = Text()
        for name, value, key in rows:
            text.append(f"{name:<9}", "dim")
            text.append(f"{value:<13}", "bold")
            text.append(f"{key}\n", "dim")
        reason = model.not_applicable
        if reason:
            text.append("✗ not applicable\n", "bold red")
            text.append(reason, "red")
        else:
            text.append("✓ valid combination", "green")
        text.append("\n")
        if model.read_only:
            text.append(f"viewing {printable(model.source)} (read-only, l: back to live)",
                        "bold yellow")
        elif model.running is not None:
            text.append(f"running: {model.running.label()}", "yellow")
        else:
            text.append("live mode ON" if live else "idle: r run, space live", "bold" if live else "")
        if text.plain != getattr(self, "_shown_text", None):  # redraw only on change
            self._shown_text = text.plain
            self.update(text)


RUN_COLUMNS = ("#", "runs", "ok", "layer", "strategy", "kernel", "exec", "w", "batch",
               "median ms", "min-max ms", "speedup", "eff", "on-CPU", "max err")


class RunsTable(DataTable):
    """One row per run (live mode: per configuration, its runs pooled): configuration,
    median, spread, speedup vs the honest baseline, correctness. Moving the cursor shows
    that run on the timeline."""

    BORDER_TITLE = "runs (speedup against the best single-worker time of any strategy)"

    MAX_ROWS = 100  # a table of thousands of rows costs the dashboard more than its charts

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.add_columns(*RUN_COLUMNS)
        self._runs: dict[str, int] = {}  # row key -> the run number it shows (its latest)

    def run_of(self, key: str) -> int | None:
        return self._runs.get(key)

    def show(self, model: Model) -> None:
        """Rebuild the rows (called when runs were added, at most every two seconds)."""
        entries = model.table_entries()[-self.MAX_ROWS:]
        self.clear()
        self._runs = {}
        cursor = None
        for key, number, count, what in entries:
            if count == 0:
                config, error = what
                self.add_row(*failure_row(config, error), key=key)
                continue
            self._runs[key] = number
            self.add_row(*run_row(number, what, count), key=key)
            if model.selected is not None and number == model.selected:
                cursor = self.row_count - 1
        if self.row_count:
            with self.prevent(DataTable.RowHighlighted):  # not a person's choice
                self.move_cursor(row=self.row_count - 1 if cursor is None else cursor)


def failure_row(config: dict | None, error: str) -> list:
    c = config or {}
    if not isinstance(c, dict):
        c = c.to_dict()
    cells = ["-", "", Text("FAIL", "bold red"), c.get("layer", "?"), c.get("strategy", ""),
             c.get("kernel", ""), c.get("executor", ""), str(c.get("workers", "")),
             str(c.get("batch", ""))]
    return cells + [Text(error[:60], "red")] + [""] * (len(RUN_COLUMNS) - len(cells) - 1)


def _num(value: float, fmt: str) -> str:
    return "-" if value != value else fmt.format(value)


def run_row(i: int, row, runs: int = 1) -> list:
    r, st = row.result, row.stats
    c = r.config
    on_cpu = " ".join(_num(v, "{:.2f}") for v in (r.on_cpu_ratio or [])[:4]) or "-"
    ok = Text("ok", "green") if r.ok else Text("FAIL", "bold red")
    return [str(i), str(runs) if runs > 1 else "", ok, c["layer"], c["strategy"], c["kernel"], c["executor"],
            str(c["workers"]), str(c["batch"]), ms(r.median_ms), f"{ms(r.min_ms)}-{ms(r.max_ms)}",
            _num(st.speedup_honest, "{:.2f}x"), _num(100 * st.efficiency, "{:.0f}%"),
            on_cpu, f"{r.max_abs_error:.1e}"]
