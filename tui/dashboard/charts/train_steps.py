"""The train tab's charts of what a step measured: each worker's phases in its last steps
(stacked bars, the wait for the others drawn as idle), and the staleness of Hogwild!'s
gradients as a histogram."""

from __future__ import annotations

# a step's phases per worker (profiles.train.measures.PHASES), the wait drawn as idle: the
# bars' colours as plotext names them, and the same ANSI colours as the legend's markup
# names them (plotext's "orange" is ANSI yellow)
STEP_COLORS = {"compute": "cyan", "wait": "gray", "combine": "orange", "update": "green"}
LEGEND_COLORS = {"cyan": "cyan", "gray": "gray", "orange": "yellow", "green": "green"}
BAR_STEPS = 3  # each worker's last steps drawn as bars
MAX_BARS = 24  # staleness values drawn one bar each from 0


def empty_chart(plt, message) -> None:
    plt.text(message, 0.02, 0.5, alignment="left")
    plt.xlim(0, 1)
    plt.ylim(0, 1)
    plt.xticks([])
    plt.yticks([])


def last_measured(runs, key: str):
    """The newest epoch report's `key` of the newest run that has one, and that run."""
    for run in reversed(runs):
        for report in reversed(run.reports):
            value = getattr(report, key, None)
            if value:
                return value, run
    return None, None


def phases_legend() -> str:
    return " ".join(
        f"[{LEGEND_COLORS[c]}]{'░' if p == 'wait' else '█'}{p}[/]" for p, c in STEP_COLORS.items()
    )


def draw_phases(plt, runs, by_images: bool) -> None:
    """Each worker's last BAR_STEPS steps as horizontal bars: compute, wait, combine, update
    stacked in ms (newest at the bottom of each worker's group)."""
    phases, run = last_measured(runs, "step_phases")
    recent = (phases or {}).get("recent") or []
    if not any(recent):
        empty_chart(plt, "each worker's step phases appear after an epoch")
        return
    labels, rows = [], []
    for w, steps in enumerate(recent):
        shown = steps[-BAR_STEPS:]
        for k, row in enumerate(shown):
            labels.append(f"w{w} {k - len(shown) + 1:+d}" if k < len(shown) - 1 else f"w{w}  0")
            rows.append(row)
    if not rows:
        empty_chart(plt, "no step measured yet")
        return
    series = [[r[i] for r in rows] for i in range(len(STEP_COLORS))]
    plt.stacked_bar(
        labels[::-1],
        [s[::-1] for s in series],
        orientation="h",
        color=list(STEP_COLORS.values()),
        width=0.6,
    )
    plt.xlabel(f"ms, {run.label}")


def _measured(run) -> list:
    return [r for r in run.reports if r.staleness and r.staleness.get("measured")]


def stamped_run(runs):
    """The newest run with measured staleness (a Hogwild! run), or None."""
    return next((run for run in reversed(runs) if _measured(run)), None)


def draw_staleness(plt, runs, by_images: bool) -> None:
    """The staleness histogram (all epochs) of the newest Hogwild! run, or why none."""
    from partui.profiles.train.measures import merged_counts

    run = stamped_run(runs)
    if run is None:
        last = runs[-1] if runs and runs[-1].reports else None
        if last is not None and last.cfg.update == "sync":
            empty_chart(plt, "sync: staleness 0 by construction")
        else:
            empty_chart(plt, "Hogwild! runs' staleness, per epoch")
        return
    from partui.tui.dashboard.charts.timeline import nice_ticks

    counts = merged_counts([r.staleness for r in _measured(run)])
    # every value up to the max, an empty one as a gap; a long tail as the values seen
    top = max(counts)
    values = list(range(top + 1)) if top <= MAX_BARS else sorted(counts)
    heights = [counts.get(v, 0) for v in values]
    plt.bar([str(v) for v in values], heights, color="orange", width=0.6)
    ticks = [t for t in nice_ticks(max(heights), 5) if t == int(t)] or [0]
    plt.yticks(ticks, [f"{int(t)}" for t in ticks])
    plt.xlabel(f"versions missed, {run.label}")


def staleness_caption(runs) -> str:
    """median / p95 / max and the overlapping writes of that run, for the border."""
    from partui.profiles.train.measures import merged_counts, staleness_summary

    run = stamped_run(runs)
    if run is None:
        return ""
    reports = _measured(run)
    s = staleness_summary(merged_counts([r.staleness for r in reports]))
    overlaps = sum(r.overlapping_updates or 0 for r in reports)
    return f"med {s['median']} p95 {s['p95']} max {s['max']} · overlaps {overlaps}"
