"""The train tab: choose how to train by key, start and stop, watch loss and accuracy of several
runs.

Training runs in a child process (profiles.service.training); the tab drains its
events on a timer. Every run started is kept and drawn over the others, so
sync and Hogwild! (or reduce and locked) are compared on one chart, against
wall-clock seconds or against images seen (`v`). A settings change during a run applies at
its next epoch, and the run goes on from the weights learned so far.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.widgets import Static
from textual_plotext import PlotextPlot

from partui.profiles.records.train_config import TRAIN_EXECUTORS, UPDATES, TrainConfig
from partui.tui.dashboard.charts.train import DRAW, TrainRun, run_legend
from partui.tui.dashboard.charts.train_steps import phases_legend, staleness_caption
from partui.tui.dashboard.keys import KeyItem, binding_help, train_keys
from partui.tui.dashboard.tabs.base import TabUnit

LR_STEPS = (0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
EXECUTOR_CYCLE = [e for e in TRAIN_EXECUTORS if e != "inline"]
COMBINE_CYCLE = {"dask": ["reduce", "gather"], "local": ["reduce", "locked"]}

CHART_TITLES = {
    "loss": "train loss (batch mean NLL) of every run",
    "accuracy": "test accuracy (%) per epoch",
    "speed": "images/s of each epoch",
    "phases": "last steps: ms per worker",
    "staleness": "Hogwild! staleness: block writes",
}


KEY_HELP = {  # what each key does here, said in full
    "start_stop": "start a training run with these settings, or stop the one going",
    "cancel": "stop the training run",
    "cycle('update')": "update rule: sync (one update per step) or hogwild (no lock)",
    "cycle('combine')": "sync: how partial gradients meet: reduce (summed after) or locked; "
    "on dask, reduce (a tree of adds on the workers) or gather (summed here)",
    "cycle('executor')": "next executor: "
    + ", ".join(EXECUTOR_CYCLE)
    + " (a LocalCluster partui starts, or $PARTUI_DASK_SCHEDULER)",
    "workers(1)": "one worker more (= too)",
    "workers(-1)": "one worker less",
    "batch(1)": "double the batch",
    "batch(-1)": "halve the batch",
    "lr(1)": "a higher learning rate",
    "lr(-1)": "a lower learning rate",
    "axis": "x axis of loss and accuracy: wall-clock seconds or images seen",
    "save": "save the training runs as a snapshot",
    "export": "the recent step's spans as a Chrome trace (Perfetto)",
}


class TrainTab(TabUnit, can_focus=True):
    """Settings line, loss and accuracy of every run, each worker's last steps, staleness.

    A setting changed during a run applies at its next epoch."""

    tab_id = "train"
    title = "train"

    DEFAULT_CSS = """
    TrainTab { height: 1fr; }
    TrainTab:focus { border: none; }
    TrainTab #train-settings { height: auto; padding: 0 1; border: round $primary; }
    TrainTab #train-charts { grid-size: 3 2; height: 1fr; }
    TrainTab .train-chart { border: round $primary-darken-2; }
    TrainTab #train-loss { column-span: 2; }
    """

    BINDINGS = [
        Binding("g", "start_stop", "Start/stop"),
        Binding("escape", "cancel", "Stop training"),
        Binding("u", "cycle('update')", "Update rule"),
        Binding("c", "cycle('combine')", "Combine"),
        Binding("e", "cycle('executor')", "Executor"),
        Binding("plus,equals_sign", "workers(1)", "Workers+"),
        Binding("minus", "workers(-1)", "Workers-"),
        Binding("right_square_bracket", "batch(1)", "Batch x2"),
        Binding("left_square_bracket", "batch(-1)", "Batch /2"),
        Binding("full_stop", "lr(1)", "lr up"),
        Binding("comma", "lr(-1)", "lr down"),
        Binding("v", "axis", "Seconds/images"),
        Binding("s", "save", "Save"),
        Binding("x", "export", "Export"),
    ]

    def __init__(
        self,
        runner_factory=None,
        cfg: TrainConfig | None = None,
        live_loop: bool = True,
        snapshot_dir: Path | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.cfg = cfg or TrainConfig(epochs=20)
        self.runs: list[TrainRun] = []
        self.runner: Any = None
        self._factory = runner_factory
        self.live_loop = live_loop  # False: tests drive tick() by hand
        self.snapshot_dir = snapshot_dir
        self.by_images = False  # x axis: wall-clock seconds (False) or images seen
        self.message = ""
        self.dask: dict = {}  # the current run's Dask figures (training service "dask" events)

    def compose(self) -> ComposeResult:
        yield Static(id="train-settings")
        with Grid(id="train-charts"):
            # titles short enough for a pane at 120x40; the phase colours are the
            # phases' subtitle
            for name, title in CHART_TITLES.items():
                chart = PlotextPlot(id=f"train-{name}", classes="train-chart")
                chart.border_title = title
                if name == "phases":
                    chart.border_subtitle = phases_legend()
                yield chart

    def on_resize(self) -> None:
        self.redraw()  # the legends in the borders fit the panes' new width

    def on_mount(self) -> None:
        self.redraw()
        if self.live_loop:
            self.set_interval(0.5, self.tick)

    # -- settings -------------------------------------------------------------
    def _set(self, **changes) -> None:
        new = replace(self.cfg, **changes)
        try:
            new.check()
        except ValueError as exc:
            self.message = str(exc)
        else:
            self.cfg = new
            self.message = ""
            if self.running:
                self.runner.update(new)
                self.message = "applies at the next epoch"
        self.redraw()

    def action_cycle(self, what: str) -> None:
        if what == "executor":
            self._next_executor()
            return
        choices = {
            "update": list(UPDATES),
            "combine": COMBINE_CYCLE["dask" if self.cfg.executor == "dask" else "local"],
        }[what]
        now = getattr(self.cfg, what)
        self._set(
            **{
                what: choices[(choices.index(now) + 1) % len(choices)]
                if now in choices
                else choices[0]
            }
        )

    def _next_executor(self) -> None:
        """The next executor these settings can train on; one that cannot (Dask under
        Hogwild!, or not installed) is passed over, and the message says why."""
        from partui.tui.dashboard.tabs.train_dask import dask_settings

        now = self.cfg.executor
        start = EXECUTOR_CYCLE.index(now) if now in EXECUTOR_CYCLE else -1
        skipped = ""
        for k in range(1, len(EXECUTOR_CYCLE) + 1):
            name = EXECUTOR_CYCLE[(start + k) % len(EXECUTOR_CYCLE)]
            changes, why = dask_settings(self.cfg, name)
            if why:
                skipped = f"{name} passed over: {why}"
                continue
            self._set(**changes)
            if skipped:
                self.message = skipped
                self.redraw()
            return

    def action_workers(self, delta: int) -> None:
        self._set(workers=max(1, min(64, self.cfg.workers + delta)))

    def action_batch(self, delta: int) -> None:
        b = self.cfg.batch * 2 if delta > 0 else self.cfg.batch // 2
        self._set(batch=max(8, min(512, b, self.cfg.train_size)))

    def action_lr(self, delta: int) -> None:
        lrs = sorted(set(LR_STEPS) | {self.cfg.lr})
        i = lrs.index(self.cfg.lr) + (1 if delta > 0 else -1)
        self._set(lr=lrs[max(0, min(len(lrs) - 1, i))])

    def action_axis(self) -> None:
        self.by_images = not self.by_images
        self.redraw()

    # -- running --------------------------------------------------------------
    @property
    def running(self) -> bool:
        return (
            self.runner is not None
            and bool(self.runs)
            and self.runs[-1].state in ("starting", "running")
        )

    @property
    def mode(self) -> str | None:
        return "training" if self.running else None

    def key_items(self, compact: bool) -> tuple[list[KeyItem], list[KeyItem]]:
        return train_keys()

    def help_keys(self) -> list[tuple[str, str]]:
        return binding_help(self.BINDINGS, KEY_HELP)

    def action_cancel(self) -> None:
        """esc stops the training run."""
        if self.running:
            self.action_start_stop()
        else:
            self.notify("no training is running: g starts one", timeout=2)

    def action_start_stop(self) -> None:
        if self.running:
            self.runner.stop()
            self.runs[-1].state = "stopping"
            self.redraw()
            self.report()
            return
        if self.runner is not None:
            self.runner.close()
        if self._factory is None:
            from partui.profiles.service.training import TrainProcess

            self._factory = TrainProcess
        self.runner = self._factory()
        self.dask = {}
        self.runs.append(TrainRun(len(self.runs) + 1, self.cfg))
        self.runner.start(self.cfg)
        self.redraw()
        self.report()

    def tick(self) -> bool:
        """Fold the runner's events; True when something changed (then the tab redraws)."""
        if self.runner is None or not self.runs:
            return False
        events = self.runner.drain()
        run = self.runs[-1]
        for ev in events:
            kind = ev[0]
            if kind == "step":
                step = ev[1]
                run.state = "running" if run.state == "starting" else run.state
                run.losses.append((step.step, step.elapsed_s, step.loss))
                run.images.append(step.images)
            elif kind == "epoch":
                report, recent, cfg = ev[1], ev[2], ev[3]
                run.reports.append(report)
                images = sum(r.images for r in run.reports)
                run.accuracy.append((images, report.elapsed_s, report.test_accuracy))
                run.recent = recent
                run.cfg = TrainConfig(**cfg)
                run.configs.append(run.cfg)
            elif kind == "done":
                run.state = "stopped" if ev[1] else "done"
            elif kind == "error":
                run.state = "failed"
                self.message = ev[1]
            elif kind == "dask":
                self.dask = {**self.dask, **ev[1]}
        if events:
            self.redraw()
            self.report()
        return bool(events)

    def stop_all(self) -> None:
        if self.runner is not None:
            self.runner.close()

    # -- drawing --------------------------------------------------------------
    def settings_text(self) -> str:
        return self.settings_rich().plain

    def settings_rich(self):
        """The settings (each with its key), the current run's state, and the last message."""
        from rich.text import Text

        c = self.cfg
        parts = []
        for name, value, keys in (
            ("update", c.update, "u"),
            ("combine", c.combine, "c"),
            ("executor", c.executor, "e"),
            ("workers", c.workers, "+/-"),
            ("batch", c.batch, "[/]"),
            ("lr", f"{c.lr:g}", ",/."),
            ("x axis", "images" if self.by_images else "seconds", "v"),
        ):
            parts += [f"{name} ", (str(value), "bold"), f" ({keys})  "]
        state = "idle: g starts a run"
        if self.runs:
            run = self.runs[-1]
            state = f"{run.label}: {run.state}"
            if run.losses:
                step, t, loss = run.losses[-1]
                state += f"  step {step}  {t:.1f} s  loss {loss:.3f}"
            if run.reports:
                state += (
                    f"  epoch {run.reports[-1].epoch}  "
                    f"test {100 * run.reports[-1].test_accuracy:.1f}%"
                    f"  {run.images_per_s():.0f} images/s"
                )
        parts += ["\n", state]
        if self.dask and self.runs and self.runs[-1].cfg.executor == "dask":
            from partui.tui.dashboard.tabs.train_dask import dask_line

            parts += ["\n", dask_line(self.dask)]
        if self.message:
            parts += ["\n", (self.message, "yellow")]
        return Text.assemble(*parts)

    def redraw(self) -> None:
        try:
            self.query_one("#train-settings", Static).update(self.settings_rich())
            charts = {n: self.query_one(f"#train-{n}", PlotextPlot) for n in CHART_TITLES}
        except Exception:  # not mounted yet
            return
        drawn = [run for run in self.runs if run.losses or run.reports]
        for name, chart in charts.items():
            plt = chart.plt
            plt.clear_data()
            plt.clear_figure()
            DRAW[name](plt, self.runs, self.by_images)
            if name == "staleness":
                chart.border_subtitle = staleness_caption(self.runs)
            elif name != "phases":
                # a pane not laid out yet: a third of the tab (the loss two), as the grid
                # will make it
                share = 3 if name != "loss" else 1.5
                width = chart.size.width or int(self.size.width / share) or 38
                chart.border_subtitle = run_legend(drawn, max(10, width - 4))
            chart.refresh()

    # -- snapshots --------------------------------------------------------------
    def training_records(self) -> list[dict]:
        """Every run as a snapshot training record (the same shape `partui train` saves)."""
        from partui.profiles.train.trainer import TrainResult

        out = []
        for run in self.runs:
            res = TrainResult(
                run.cfg,
                "letters (dashboard)",
                epochs=list(run.reports),
                loss_curve=[list(p) for p in run.losses],
                accuracy_curve=[[r.epoch, r.elapsed_s, r.test_accuracy] for r in run.reports],
                spans=list(run.recent),
                interrupted=run.state == "stopped",
            )
            out.append(res.to_dict())
        return out

    def action_save(self) -> None:
        from partui.profiles.store.snapshot import Snapshot, default_snapshot_path, save

        if not self.runs:
            self.notify("nothing to save yet: g starts a training run", severity="warning")
            return
        folder = self.snapshot_dir
        try:
            path = default_snapshot_path(folder, stem="train")
            path.parent.mkdir(parents=True, exist_ok=True)
            path = save(
                Snapshot(note="partui dashboard: training runs", training=self.training_records()),
                path,
                unique=True,
            )
        except OSError as exc:
            self.notify(f"cannot save: {exc.strerror or exc}", severity="error")
            return
        self.notify(f"saved {path}")

    def action_export(self) -> None:
        """The recent step's spans as a Chrome trace (Perfetto, chrome://tracing)."""
        import json

        from partui.kernels.plan.pass_axes import phase_name
        from partui.profiles.store.snapshot import default_snapshot_path

        spans = self.runs[-1].recent if self.runs else []
        if not spans:
            self.notify("no step to export yet", severity="warning")
            return
        t0 = min(s.start_ns for s in spans)
        events = [
            {
                "name": phase_name("train", s.phase),
                "ph": "X",
                "pid": 1,
                "tid": s.worker,
                "ts": (s.start_ns - t0) / 1e3,
                "dur": s.duration_ns / 1e3,
            }
            for s in spans
        ]
        events += [
            {"name": "thread_name", "ph": "M", "pid": 1, "tid": w, "args": {"name": f"worker {w}"}}
            for w in sorted({s.worker for s in spans})
        ]
        folder = self.snapshot_dir
        try:
            from partui.profiles.files.safe_files import write_text

            path = default_snapshot_path(folder, stem="train-step").with_suffix(".trace.json")
            path.parent.mkdir(parents=True, exist_ok=True)
            path = write_text(path, json.dumps({"traceEvents": events}), unique=True)
        except OSError as exc:
            self.notify(f"cannot export: {exc.strerror or exc}", severity="error")
            return
        self.notify(f"exported {path}")
