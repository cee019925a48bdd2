"""The train tab's charts: loss per step, accuracy and images/s per epoch, a recent step's
phases per worker; each run drawn in its own colour over the others.

A figure measured once per epoch is drawn as points on whole epochs, never as a line that
would look like dozens of measurements; accuracy is a share, on the whole 0-100 % scale.
"""

from __future__ import annotations

from partui.profiles.records.train_config import TrainConfig
from partui.tui.dashboard.charts.timeline import nice_ticks
from partui.tui.dashboard.charts.train_steps import draw_phases, draw_staleness, empty_chart
from partui.tui.dashboard.colors import series_color

PHASE_COLORS = {"forward": "cyan", "backward": "magenta", "combine": "yellow", "update": "green"}
MAX_POINTS = 100
POINT = "●"  # a figure measured once per epoch: a point each, no line between them
MAX_EPOCH_TICKS = 8


class TrainRun:
    """One training run as the tab draws it."""

    def __init__(self, number: int, cfg: TrainConfig):
        self.number, self.cfg = number, cfg
        self.losses: list[tuple[int, float, float]] = []  # step, seconds, loss
        self.images: list[int] = []  # images seen at each point of losses
        self.accuracy: list[
            tuple[int, float, float]
        ] = []  # images at the epoch's end, seconds, acc
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

    def loss_images(self) -> list[int]:
        """Images seen at each loss point (from the steps and the batch where not recorded)."""
        if len(self.images) == len(self.losses):
            return self.images
        return [p[0] * self.cfg.batch for p in self.losses]


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
    in `room` cells (a legend inside the plot would cover its first points). When not all
    labels fit, the runs' numbers alone (the wider loss pane names them)."""
    parts: list[str] = []
    for short in (False, True):
        parts, used = [], 0
        for run in reversed(runs):
            item = f"{POINT} {f'#{run.number}' if short else run.label}"
            if used + len(item) + 1 > room and parts:
                break
            parts.insert(0, f"[{series_color(run.number - 1)}]{item}[/]")
            used += len(item) + 1
        if len(parts) == len(runs):
            break
    return " ".join(parts)


def _draw_curves(plt, runs, by_images: bool, attr: str, scale: float, empty: str) -> bool:
    """Each run's points: the loss of every step as a line, a figure per epoch as points;
    against its own seconds or the images it has seen."""
    drawn = False
    for run in runs:
        raw = getattr(run, attr)
        if attr == "losses":  # the images seen ride along with each point
            raw = [(i, t, y) for i, (_, t, y) in zip(run.loss_images(), raw, strict=True)]
        points = _thin(raw)
        if not points:
            continue
        xs = [p[0] if by_images else p[1] for p in points]
        ys = [p[2] * scale for p in points]
        color = series_color(run.number - 1)
        if attr == "losses":
            plt.plot(xs, ys, color=color, marker="braille")
        else:
            plt.scatter(xs, ys, color=color, marker=POINT)
        drawn = True
    if not drawn:
        empty_chart(plt, empty)
        return False
    plt.xlabel("images seen" if by_images else "seconds")
    return True


def draw_loss(plt, runs, by_images: bool) -> None:
    _draw_curves(plt, runs, by_images, "losses", 1.0, "no runs yet: g starts one")


def draw_accuracy(plt, runs, by_images: bool) -> None:
    if _draw_curves(plt, runs, by_images, "accuracy", 100.0, "scored after each epoch"):
        # a share: the whole 0-100 % scale, so a few points are not blown up
        plt.ylim(0, 100)
        plt.yticks([0, 25, 50, 75, 100])


def draw_speed(plt, runs, by_images: bool) -> None:
    last, top = 0, 0.0
    for run in runs:
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
        empty_chart(plt, "measured per epoch")
        return
    # whole epochs on the axis, half an epoch of room each side; images/s from 0
    plt.xlim(0.5, last + 0.5)
    plt.xticks(epoch_ticks(last))
    plt.xlabel("epoch")
    top = top * 1.1 if top > 0 else 1.0
    plt.ylim(0, top)
    plt.yticks(nice_ticks(top, 6))


DRAW = {
    "loss": draw_loss,
    "accuracy": draw_accuracy,
    "speed": draw_speed,
    "phases": draw_phases,
    "staleness": draw_staleness,
}
