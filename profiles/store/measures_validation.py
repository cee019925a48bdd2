"""Checks of a training record's step measures (profiles.train.measures): the staleness of
Hogwild!'s gradients, the overlapping writes, each worker's step phases."""

from __future__ import annotations

from partui.profiles.files.checked_json import Check

BIG_INT = 2**53
BIG_MS = 1e12
MAX_HISTOGRAM = 100_000  # distinct staleness values
MAX_RECENT = 1000  # steps per worker kept for the bars
_STALENESS_KEYS = {"median", "p95", "max", "histogram", "updates", "measured", "note"}
_PHASES_KEYS = {"workers", "steps", "straggler_gap_ms", "wait_note", "recent"}
_WORKER_KEYS = {"worker", "steps", "compute_ms", "wait_ms", "combine_ms", "update_ms"}


def check_staleness(s, where: str) -> None:
    if s is None:
        return
    Check.obj(s, where)
    Check.keys(s, _STALENESS_KEYS, where)
    for key in ("median", "p95", "max", "updates"):
        if s.get(key) is not None:
            Check.integer(s[key], f"{where}.{key}", 0, BIG_INT)
    if "measured" in s:
        Check.boolean(s["measured"], f"{where}.measured")
    Check.text(s.get("note"), f"{where}.note", 1000, null=True)
    if s.get("histogram") is not None:
        for j, pair in enumerate(Check.array(s["histogram"], f"{where}.histogram", MAX_HISTOGRAM)):
            w = f"{where}.histogram[{j}]"
            Check.array(pair, w, 2, 2)
            Check.integer(pair[0], f"{w}[0]", 0, BIG_INT)
            Check.integer(pair[1], f"{w}[1]", 0, BIG_INT)


def check_overlaps(v, where: str) -> None:
    if v is not None:
        Check.integer(v, where, 0, BIG_INT)


def check_step_phases(p, where: str, workers: int) -> None:
    if p is None:
        return
    Check.obj(p, where)
    Check.keys(p, _PHASES_KEYS, where)
    Check.integer(Check.field(p, "steps", where), f"{where}.steps", 0, BIG_INT)
    for j, w in enumerate(
        Check.array(Check.field(p, "workers", where), f"{where}.workers", workers)
    ):
        at = f"{where}.workers[{j}]"
        Check.obj(w, at)
        Check.keys(w, _WORKER_KEYS, at)
        Check.integer(Check.field(w, "worker", at), f"{at}.worker", 0, workers - 1)
        Check.integer(w.get("steps", 0), f"{at}.steps", 0, BIG_INT)
        for key in ("compute_ms", "wait_ms", "combine_ms", "update_ms"):
            Check.number(w.get(key), f"{at}.{key}", 0, BIG_MS, null=True)
    gap = p.get("straggler_gap_ms")
    if gap is not None:
        Check.obj(gap, f"{where}.straggler_gap_ms")
        Check.keys(gap, {"median", "max"}, f"{where}.straggler_gap_ms")
        for key in ("median", "max"):
            Check.number(gap.get(key), f"{where}.straggler_gap_ms.{key}", 0, BIG_MS)
    Check.text(p.get("wait_note"), f"{where}.wait_note", 1000, null=True)
    for j, steps in enumerate(Check.array(p.get("recent", []), f"{where}.recent", workers)):
        for k, row in enumerate(Check.array(steps, f"{where}.recent[{j}]", MAX_RECENT)):
            at = f"{where}.recent[{j}][{k}]"
            for i, v in enumerate(Check.array(row, at, 4, 4)):
                Check.number(v, f"{at}[{i}]", 0, BIG_MS)
