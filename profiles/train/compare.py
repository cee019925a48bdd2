"""Sync SGD against Hogwild! on the same settings: hardware efficiency (images/s) against
statistical efficiency (images needed to reach a loss), and what the two make of time.

The two runs are interleaved epoch by epoch (alternating which goes first), so both see the
same conditions on a shared machine; each run's clock counts its own training only (its
epochs and their scoring), never the other's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from partui.profiles.records.train_config import TrainConfig
from partui.profiles.system import blas
from partui.profiles.train.trainer import Trainer, TrainResult

SMOOTH_SHARE = 0.1  # the loss is a running mean over this share of an epoch's steps


@dataclass
class UpdateRun:
    update: str
    result: TrainResult
    images: list[int]  # images seen at each point of the loss curve
    own_s: list[float]  # this run's own training seconds at each point
    smoothed: list[float]  # the loss curve as a running mean
    window: int  # steps in the running mean


def own_times(result: TrainResult) -> list[float]:
    """Each loss point's time on the run's own clock: elapsed within its epoch plus the
    whole of its earlier epochs (training and scoring)."""
    out: list[float] = []
    offset = 0.0
    steps_before = 0
    curve = result.loss_curve
    for e in result.epochs:
        start = e.elapsed_s - e.eval_s - e.wall_s  # since the run's start, paused time included
        for point in curve[steps_before : steps_before + e.steps]:
            out.append(offset + max(0.0, point[1] - start))
        steps_before += e.steps
        offset += e.wall_s + e.eval_s
    return out


def running_mean(values, window: int) -> list[float]:
    v = np.asarray(values, np.float64)
    if not len(v):
        return []
    c = np.cumsum(np.insert(v, 0, 0.0))
    idx = np.arange(1, len(v) + 1)
    lo = np.maximum(0, idx - window)
    return ((c[idx] - c[lo]) / (idx - lo)).tolist()


def reach(run: UpdateRun, target: float) -> tuple[int | None, float | None]:
    """Images seen and own seconds when the smoothed loss first got to `target` or below."""
    for images, s, loss in zip(run.images, run.own_s, run.smoothed, strict=True):
        if loss <= target:
            return images, s
    return None, None


def compare_updates(cfg: TrainConfig, data, emit=None) -> list[UpdateRun]:
    """Train `cfg` with sync and with hogwild, interleaved epoch by epoch; `emit(update,
    event)` gets each run's progress events."""
    trainers = [
        Trainer(replace(cfg, update=u), data, emit=(lambda ev, u=u: emit(u, ev)) if emit else None)
        for u in ("sync", "hogwild")
    ]
    gens = [t.epochs() for t in trainers]
    try:
        with blas.limit(1):
            for epoch in range(cfg.epochs):
                for g in gens if epoch % 2 == 0 else gens[::-1]:
                    next(g, None)
                if any(t.result.interrupted for t in trainers):  # Ctrl+C: no more epochs
                    break
    finally:
        for g in gens:
            g.close()
    steps_per_epoch = max(1, len(data.train_y) // cfg.batch)
    window = max(1, int(steps_per_epoch * SMOOTH_SHARE))
    runs = []
    for t in trainers:
        r = t.result
        runs.append(
            UpdateRun(
                t.cfg.update,
                r,
                [int(p[0]) * t.cfg.batch for p in r.loss_curve],
                own_times(r),
                running_mean([p[2] for p in r.loss_curve], window),
                window,
            )
        )
    return runs


def default_target(runs: list[UpdateRun]) -> float | None:
    """A loss both runs reached: the higher of their final smoothed losses."""
    finals = [r.smoothed[-1] for r in runs if r.smoothed]
    return max(finals) if len(finals) == len(runs) else None


def summary(runs: list[UpdateRun], target: float | None) -> dict:
    """Per update rule: images/s (median of epochs, min-max), final smoothed loss, test
    accuracy, and the images and own seconds to reach `target`."""
    out: dict = {
        "target_loss": target,
        "smoothing_steps": runs[0].window if runs else None,
        "runs": {},
    }
    for run in runs:
        r = run.result
        ips = [e.images_per_s for e in r.epochs]
        images, seconds = reach(run, target) if target is not None else (None, None)
        out["runs"][run.update] = {
            "images_per_s": float(np.median(ips)) if ips else None,
            "images_per_s_range": [min(ips), max(ips)] if ips else None,
            "final_loss": run.smoothed[-1] if run.smoothed else None,
            "test_accuracy": r.test_accuracy,
            "images_to_target": images,
            "seconds_to_target": seconds,
            "own_seconds": run.own_s[-1] if run.own_s else None,
            "staleness": r.staleness,
            "overlapping_updates": r.overlapping_updates,
        }
    return out
