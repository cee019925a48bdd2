"""`partui show SNAPSHOT --repeat N`: one timed repeat of each run (or of `--run K`) as text
or JSON, the same repeat the dashboard's replay shows: its time against the run's, its
speedup against the baseline, each worker's tasks, the CPU samples that overlap it, and
its worker timeline."""

from __future__ import annotations

import shutil

from partui.tui.cli.errors import UsageError
from partui.tui.dashboard.charts.timeline import timeline_lines, view_of_result
from partui.tui.text.repeat_pick import (
    NAMED,
    RepeatPick,
    own_repeats,
    parse_repeat,
    samples_over,
    well_formed,
)
from partui.tui.text.safe_text import clip
from partui.tui.text.table import ms, short_ms, table

TIMELINE_WIDTH = 100  # when stdout is not a terminal


def picks(snap, repeat: str, run: int | None) -> list[tuple[RepeatPick, object]]:
    """(the pick, the run's RunResult) per run asked for; UsageError on one line when a run
    or repeat does not exist."""
    if not well_formed(repeat):
        raise UsageError(
            f"--repeat {clip(repeat)}: give a repeat number (1..) or one of {', '.join(NAMED)}"
        )
    if not snap.runs:
        raise UsageError("--repeat: the snapshot has no runs")
    n = len(snap.runs)
    if run is not None and not 1 <= run <= n:
        raise UsageError(f"--run {run}: the snapshot has {n} run{'s' if n != 1 else ''} (1..{n})")
    numbers = [run] if run is not None else list(range(1, n + 1))
    out = []
    for number in numbers:
        result = snap.runs[number - 1]
        times, starts = own_repeats(result)
        try:
            index = parse_repeat(repeat, times)
        except ValueError as exc:
            holding = [k for k, r in enumerate(snap.runs, 1) if _holds(r, repeat)]
            hint = f"; run {holding[0]} has it (--run K)" if run is None and holding else ""
            raise UsageError(
                f"--repeat {clip(repeat)}: run {number} ({result.config.label()}) {exc}{hint}"
            ) from None
        out.append(
            (RepeatPick(number, index, tuple(times), starts[index] if starts else None), result)
        )
    return out


def _holds(result, repeat: str) -> bool:
    try:
        parse_repeat(repeat, own_repeats(result)[0])
    except ValueError:
        return False
    return True


def repeat_data(pick: RepeatPick, result, baseline) -> dict:
    """One repeat's figures (the JSON of `show --repeat`; the text is drawn from it)."""
    view = view_of_result(result, pick.run, pick.repeat)
    t0 = pick.start_ns if pick.start_ns is not None else view.t0
    spans = sorted((s for lane in view.lanes for s in lane.spans), key=lambda s: s.start_ns)
    busy = [sum(s.end_ns - s.start_ns for s in lane.spans) / 1e6 for lane in view.lanes]
    mean = sum(busy) / len(busy) if busy else 0.0
    rank = sorted(pick.times_ms).index(pick.wall_ms) + 1
    cpu = None
    if pick.start_ns is not None:
        over = samples_over(result.cpu_samples, pick.start_ns, pick.wall_ms)
        if over:
            cores = max(len(s.per_core) for s in over)
            cpu = {
                "samples": len(over),
                "window_ms": [s.window_ns / 1e6 for s in over],
                "per_core": [
                    _mean(s.per_core[c] for s in over if c < len(s.per_core)) for c in range(cores)
                ],
                "others": _mean(
                    s.others_cpu / len(s.per_core)
                    for s in over
                    if s.others_cpu is not None and s.per_core
                ),
            }
    return {
        "run": pick.run,
        "configuration": result.config.label(),
        "repeat": pick.repeat + 1,
        "repeats": pick.count,
        "which": pick.tag or None,
        "rank": rank,
        "wall_ms": pick.wall_ms,
        "median_ms": pick.median_ms,
        "vs_median": pick.wall_ms / pick.median_ms if pick.median_ms > 0 else None,
        "baseline_ms": baseline.median_ms if baseline is not None else None,
        "speedup": baseline.median_ms / pick.wall_ms
        if baseline is not None and pick.wall_ms > 0
        else None,
        "workers": [
            {
                "worker": lane.worker,
                "tasks": len(lane.spans),
                "busy_ms": b,
                "busy_share": lane.busy_share,
            }
            for lane, b in zip(view.lanes, busy, strict=True)
        ],
        "imbalance": max(busy) / mean if mean > 0 else None,
        "fixed_us": view.fixed_us,
        "cpu": cpu,
        "spans": [
            {
                "worker": s.worker,
                "task": s.task,
                "phase": view.phase_names.get(s.phase, f"phase {s.phase}"),
                "start_ms": (s.start_ns - t0) / 1e6,
                "end_ms": (s.end_ns - t0) / 1e6,
            }
            for s in spans
        ],
    }


def _mean(values) -> float | None:
    values = [v for v in values if v == v]
    return sum(values) / len(values) if values else None


def repeat_text(pick: RepeatPick, result, data: dict) -> str:
    """The repeat as a person reads it: words, a table per worker, CPU, the timeline."""
    lines = [f"run {pick.run}  {data['configuration']}", f"  {pick.words()}"]
    spread = f"{ms(min(pick.times_ms))}-{ms(max(pick.times_ms))}"
    lines.append(
        f"  {data['vs_median']:.2f}x the run's median; rank {data['rank']} of {pick.count} "
        f"(1 = fastest; the run's min-max {spread} ms)"
        if data["vs_median"] is not None
        else f"  rank {data['rank']} of {pick.count}"
    )
    if data["speedup"] is not None:
        lines.append(
            f"  this repeat against the baseline ({short_ms(data['baseline_ms'])} ms, the best "
            f"1-worker median): {data['speedup']:.2f}x"
        )
    rows = [
        [f"w{w['worker']}", str(w["tasks"]), ms(w["busy_ms"]), f"{w['busy_share']:.0%}"]
        for w in data["workers"]
    ]
    lines.append("")
    lines += [
        "  " + line
        for line in table(["worker", "tasks", "busy ms", "busy share"], rows).splitlines()
    ]
    extra = []
    if data["imbalance"] is not None:
        extra.append(f"imbalance {data['imbalance']:.2f} (busiest / mean)")
    if data["fixed_us"] is not None:
        extra.append(f"hand-out and collection {data['fixed_us']:.0f} µs")
    if extra:
        lines.append("  " + "; ".join(extra))
    lines.append("  " + _cpu_words(pick, data["cpu"]))
    lines.append("")
    width = shutil.get_terminal_size((TIMELINE_WIDTH, 24)).columns - 2
    view = view_of_result(result, pick.run, pick.repeat)
    text = timeline_lines(view, max(40, min(width, 160)), len(view.lanes) + 5, keys="")
    lines += ["  " + line for line in text.plain.splitlines()]
    return "\n".join(lines)


def _cpu_words(pick: RepeatPick, cpu: dict | None) -> str:
    if pick.start_ns is None:
        return "CPU: this snapshot kept no repeat start times; no CPU figures per repeat"
    if cpu is None:
        return "CPU: no sample of the run overlaps this repeat"
    cores = "  ".join(f"cpu{c} {v:.0f}%" for c, v in enumerate(cpu["per_core"]) if v is not None)
    others = f"  others {cpu['others']:.0f}%" if cpu["others"] is not None else ""
    longest = max(cpu["window_ms"], default=0.0)
    note = (
        f"; windows up to {longest:.0f} ms, longer than the repeat: averages over more than it"
        if longest > pick.wall_ms
        else ""
    )
    n = cpu["samples"]
    which = "the sample" if n == 1 else f"the {n} samples"
    return f"CPU (mean of {which} overlapping it): {cores}{others}{note}"
