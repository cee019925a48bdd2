"""The train tab: choose how to train by key, start and stop, watch loss and accuracy of several
runs.

Training runs in a child process (profiles.train_stream); the tab drains its
events on a timer. Every run started is kept and drawn over the others, so
sync and Hogwild! (or reduce and locked) are compared on one chart, against
wall time or against steps (`v`). A settings change during a run applies at
its next epoch, and the run goes on from the weights learned so far.
"""

from __future__ import annotations

from dataclasses import replace

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.widgets import Static
from textual_plotext import PlotextPlot

from partui.profiles.records.train_config import LOCAL_TRAIN_EXECUTORS, UPDATES, TrainConfig
from partui.tui.dashboard.charts.timeline import nice_ticks
from partui.tui.dashboard.colors import series_color

PHASE_COLORS = {"forward": "cyan", "backward": "magenta", "combine": "yellow", "update": "green"}
MAX_POINTS = 100
POINT = "●"  # a figure measured once per epoch: a point each, no line between them
MAX_EPOCH_TICKS = 8
LR_STEPS = (0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)


class TrainRun:
    """One training run as the tab draws it."""

    def __init__(self, number: int, cfg: TrainConfig):
        self.number, self.cfg = number, cfg
        self.losses: list[tuple[int, float, float]] = []  # step, seconds, loss
        self.accuracy: list[tuple[int, float, float]] = []  # steps at the epoch's end, seconds, acc
        self.reports: list = []
        self.configs: list[TrainConfig] = []  # each epoch's settings (a change applies at an epoch)
        self.recent: list = []  # spans of a recent step
        self.state = "starting"  # starting | running | done | stopped | failed: ...

    @property
    def label(self) -> str:
        how = self.cfg.update + (f"/{self.cfg.combine}" if self.cfg.update == "sync" else "")
        return f"#{self.number} {how} {self.cfg.executor[0]}{self.cfg.workers}"

    def images_per_s(self) -> float:
        return self.reports[-1].images_per_s if self.reports else 0.0


def _thin(points, limit=MAX_POINTS):
    if len(points) <= limit:
        return points
    step = len(points) / limit
    return [points[int(i * step)] for i in range(limit)] + [points[-1]]


def epoch_ticks(last: int, most: int = MAX_EPOCH_TICKS) -> list[int]:
    """Whole epochs for an axis over 1..last: every one, or the multiples of a round step
    (2, 5, 10, 20, 50 ...), at most `most` of them; 1 too when the step leaves room for it."""
    step = 1
    while last // step > most:
        step = next(m * 10**e for e in range(12) for m in (1, 2, 5) if m * 10**e > step)
    if step == 1:
        return list(range(1, last + 1))
    ticks = list(range(step, last + 1, step))
    return [1, *ticks] if step >= 5 and len(ticks) < most else ticks


def run_legend(runs, room: int) -> str:
    """Each run's colour and label, as markup for a chart's border: the newest runs that fit
    in `room` cells (a legend inside the plot would cover its first points)."""
    parts: list[str] = []
    used = 0
    for run in reversed(runs):
        item = f"{POINT} {run.label}"
        if used + len(item) + 1 > room and parts:
            break
        parts.insert(0, f"[{series_color(run.number - 1)}]{item}[/]")
        used += len(item) + 1
    return " ".join(parts)


def _empty(plt, message):
    plt.text(message, 0.02, 0.5, alignment="left")
    plt.xlim(0, 1)
    plt.ylim(0, 1)
    plt.xticks([])
    plt.yticks([])


class TrainTab(Vertical, can_focus=True):
    """Settings line, loss and accuracy of every run, the phase timeline of a recent step."""

    DEFAULT_CSS = """
    TrainTab { height: 1fr; }
    TrainTab:focus { border: none; }
    TrainTab #train-settings { height: auto; padding: 0 1; border: round $primary; }
    TrainTab #train-charts { grid-size: 2 2; height: 1fr; }
    TrainTab .train-chart { border: round $primary-darken-2; }
    """

    BINDINGS = [
        Binding("g", "start_stop", "Start/stop"),
        Binding("u", "cycle('update')", "Update rule"),
        Binding("c", "cycle('combine')", "Combine"),
        Binding("e", "cycle('executor')", "Executor"),
        Binding("plus,equals_sign", "workers(1)", "Workers+"),
        Binding("minus", "workers(-1)", "Workers-"),
        Binding("right_square_bracket", "batch(1)", "Batch x2"),
        Binding("left_square_bracket", "batch(-1)", "Batch /2"),
        Binding("full_stop", "lr(1)", "lr up"),
        Binding("comma", "lr(-1)", "lr down"),
        Binding("v", "axis", "Time/steps"),
        Binding("s", "save", "Save"),
        Binding("x", "export", "Export"),
    ]

    def __init__(self, runner_factory=None, cfg: TrainConfig | None = None, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg or TrainConfig(epochs=20)
        self.runs: list[TrainRun] = []
        self.runner = None
        self._factory = runner_factory
        self.by_steps = False  # x axis: wall time (False) or steps
        self.message = ""

    def compose(self) -> ComposeResult:
        yield Static(id="train-settings")
        with Grid(id="train-charts"):
            # titles short enough for a pane at 120x40; the phase colours are the
            # timeline's subtitle
            for name, title in (
                ("loss", "train loss (batch mean NLL)"),
                ("accuracy", "test accuracy (%) after each epoch"),
                ("timeline", "a recent step: ms per worker"),
                ("speed", "images/s of each epoch"),
            ):
                chart = PlotextPlot(id=f"train-{name}", classes="train-chart")
                chart.border_title = title
                if name == "timeline":
                    chart.border_subtitle = " ".join(
                        f"[{color}]█ {phase}[/]" for phase, color in PHASE_COLORS.items()
                    )
                yield chart

    def on_resize(self) -> None:
        self.redraw()  # the legends in the borders fit the panes' new width

    def on_mount(self) -> None:
        self.redraw()
        if getattr(self.app, "live_loop", True):  # tests drive tick() by hand
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
        choices = {
            "update": list(UPDATES),
            "combine": ["reduce", "locked"],
            "executor": [e for e in LOCAL_TRAIN_EXECUTORS if e != "inline"],
        }[what]
        now = getattr(self.cfg, what)
        self._set(
            **{
                what: choices[(choices.index(now) + 1) % len(choices)]
                if now in choices
                else choices[0]
            }
        )

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
        self.by_steps = not self.by_steps
        self.redraw()

    # -- running --------------------------------------------------------------
    @property
    def running(self) -> bool:
        return (
            self.runner is not None
            and bool(self.runs)
            and self.runs[-1].state in ("starting", "running")
        )

    def action_start_stop(self) -> None:
        if self.running:
            self.runner.stop()
            self.runs[-1].state = "stopping"
            self.redraw()
            return
        if self.runner is not None:
            self.runner.close()
        if self._factory is None:
            from partui.profiles.service.training import TrainProcess

            self._factory = TrainProcess
        self.runner = self._factory()
        self.runs.append(TrainRun(len(self.runs) + 1, self.cfg))
        self.runner.start(self.cfg)
        self.redraw()

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
            elif kind == "epoch":
                report, recent, cfg = ev[1], ev[2], ev[3]
                run.reports.append(report)
                steps = sum(r.steps for r in run.reports)
                run.accuracy.append((steps, report.elapsed_s, report.test_accuracy))
                run.recent = recent
                run.cfg = TrainConfig(**cfg)
                run.configs.append(run.cfg)
            elif kind == "done":
                run.state = "stopped" if ev[1] else "done"
            elif kind == "error":
                run.state = "failed"
                self.message = ev[1]
        if events:
            self.redraw()
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
            ("x axis", "steps" if self.by_steps else "seconds", "v"),
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
        if self.message:
            parts += ["\n", (self.message, "yellow")]
        return Text.assemble(*parts)

    def redraw(self) -> None:
        try:
            self.query_one("#train-settings", Static).update(self.settings_rich())
            charts = {
                n: self.query_one(f"#train-{n}", PlotextPlot)
                for n in ("loss", "accuracy", "timeline", "speed")
            }
        except Exception:  # not mounted yet
            return
        drawn = [run for run in self.runs if run.losses or run.reports]
        for name, chart in charts.items():
            plt = chart.plt
            plt.clear_data()
            plt.clear_figure()
            getattr(self, f"_draw_{name}")(plt)
            if name != "timeline":
                # a pane not laid out yet: half the tab, as the 2x2 grid will make it
                width = chart.size.width or self.size.width // 2 or 58
                chart.border_subtitle = run_legend(drawn, max(10, width - 6))
            chart.refresh()

    def _draw_curves(self, plt, attr: str, scale: float, empty: str) -> bool:
        """Each run's points: the loss of every step as a line, a figure per epoch as points."""
        drawn = False
        for run in self.runs:
            points = _thin(getattr(run, attr))
            if not points:
                continue
            xs = [p[0] if self.by_steps else p[1] for p in points]
            ys = [p[2] * scale for p in points]
            color = series_color(run.number - 1)
            if attr == "losses":
                plt.plot(xs, ys, color=color, marker="braille")
            else:
                plt.scatter(xs, ys, color=color, marker=POINT)
            drawn = True
        if not drawn:
            _empty(plt, empty)
            return False
        plt.xlabel("steps" if self.by_steps else "seconds")
        return True

    def _draw_loss(self, plt) -> None:
        self._draw_curves(plt, "losses", 1.0, "no runs yet: g starts one")

    def _draw_accuracy(self, plt) -> None:
        if self._draw_curves(plt, "accuracy", 100.0, "scored after each epoch"):
            # a share: the whole 0-100 % scale, so a few points are not blown up
            plt.ylim(0, 100)
            plt.yticks([0, 25, 50, 75, 100])

    def _draw_speed(self, plt) -> None:
        last, top = 0, 0.0
        for run in self.runs:
            if run.reports:
                plt.scatter(
                    [r.epoch for r in run.reports],
                    [r.images_per_s for r in run.reports],
                    color=series_color(run.number - 1),
                    marker=POINT,
                )
                last = max(last, max(r.epoch for r in run.reports))
                top = max(top, max(r.images_per_s for r in run.reports))
        if not last:
            _empty(plt, "measured per epoch")
            return
        # whole epochs on the axis, half an epoch of room each side; images/s from 0
        plt.xlim(0.5, last + 0.5)
        plt.xticks(epoch_ticks(last))
        plt.xlabel("epoch")
        top = top * 1.1 if top > 0 else 1.0
        plt.ylim(0, top)
        plt.yticks(nice_ticks(top, 6))

    def _draw_timeline(self, plt) -> None:
        from partui.kernels.grad.jobs import phase_name

        spans = self.runs[-1].recent if self.runs else []
        if not spans:
            _empty(plt, "the spans of a recent step appear after an epoch")
            return
        t0 = min(s.start_ns for s in spans)
        lanes = max(s.worker for s in spans) + 1
        for name, color in PHASE_COLORS.items():
            for s in (s for s in spans if phase_name("train", s.phase) == name):
                a, b = (s.start_ns - t0) / 1e6, (s.end_ns - t0) / 1e6
                xs = [a + (b - a) * i / 20 for i in range(21)]
                plt.scatter(xs, [s.worker] * len(xs), marker="█", color=color)
        plt.yticks(list(range(lanes)), [f"w{w}" for w in range(lanes)])
        plt.ylim(-0.6, lanes - 0.4)

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
            self.app.notify("nothing to save yet: g starts a training run", severity="warning")
            return
        folder = getattr(self.app, "snapshot_dir", None)
        try:
            path = default_snapshot_path(folder, stem="train")
            path.parent.mkdir(parents=True, exist_ok=True)
            path = save(
                Snapshot(note="partui dashboard: training runs", training=self.training_records()),
                path,
                unique=True,
            )
        except OSError as exc:
            self.app.notify(f"cannot save: {exc.strerror or exc}", severity="error")
            return
        self.app.notify(f"saved {path}")

    def action_export(self) -> None:
        """The recent step's spans as a Chrome trace (Perfetto, chrome://tracing)."""
        import json

        from partui.kernels.grad.jobs import phase_name
        from partui.profiles.store.snapshot import default_snapshot_path

        spans = self.runs[-1].recent if self.runs else []
        if not spans:
            self.app.notify("no step to export yet", severity="warning")
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
        folder = getattr(self.app, "snapshot_dir", None)
        try:
            from partui.profiles.files.safe_files import write_text

            path = default_snapshot_path(folder, stem="train-step").with_suffix(".trace.json")
            path.parent.mkdir(parents=True, exist_ok=True)
            path = write_text(path, json.dumps({"traceEvents": events}), unique=True)
        except OSError as exc:
            self.app.notify(f"cannot export: {exc.strerror or exc}", severity="error")
            return
        self.app.notify(f"exported {path}")
