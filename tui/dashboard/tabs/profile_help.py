"""The profile tab's help texts: its keys and the runs table's columns, said in full."""

from partui.profiles.records.verdict_rules import MIN_REPEATS, NOISE_FLOOR

KEY_HELP = {  # what each key does, said in full (the key bar and palette use short names)
    "run_once": "run the configuration once: warm-ups, then timed repeats, checked",
    "toggle_live": "live mode: run it again and again; a change applies from the next run",
    "cancel": "stop the run, live mode and the sweep",
    "cycle('strategy', 1)": "next strategy (how the work is cut)",
    "cycle('strategy', -1)": "previous strategy",
    "cycle('kernel', 1)": "next kernel: loops or vectorized",
    "cycle('executor', 1)": "next executor: inline, threads, processes, blas",
    "cycle('executor', -1)": "previous executor",
    "workers(1)": "one worker more (= too)",
    "workers(-1)": "one worker less",
    "batch(1)": "double the batch",
    "batch(-1)": "halve the batch",
    "repeat(-1)": "the timeline: the previous timed repeat of its run",
    "repeat(1)": "the timeline: the next timed repeat of its run",
    "sweep": "run the layer and strategy at 1, 2, ... workers up to the core count",
    "back_to_live": "leave a snapshot, back to the live session",
    "next_chart": "compact layout (small terminal): show the next chart",
    "roofline": "the roofline in place of the four charts, and back",
}
HELP_COLUMNS = [
    ("ok", "the output matches the float64 reference within the tolerance (else FAIL)"),
    ("w", "workers: threads or processes (BLAS threads for the blas executor)"),
    ("median ms", "median time of the timed repeats (warm-ups not counted)"),
    ("min-max ms", "the spread: fastest and slowest repeat"),
    (
        "speedup",
        "against the honest baseline: the best single-worker median of any "
        "strategy for this layer, kernel and batch, measured on this machine (this "
        "session or the machine's baseline book); 1.00x = as fast as that",
    ),
    (
        "vs 1w",
        "the speedup over the same configuration at 1 worker with its 95% interval, "
        f"where both runs' repeats show a difference beyond the {NOISE_FLOOR:.2f}x noise "
        "floor; else n.s. (no significant difference), spread (too spread to conclude) or "
        f"few (under {MIN_REPEATS} repeats). Shown when a run has a 1-worker twin",
    ),
    ("eff", "efficiency = speedup / workers; 100% = every worker fully useful"),
    (
        "on-CPU",
        "per worker, CPU time / busy time. 1.00 = it computed all the time it was "
        "busy; below 1 it waited: for the GIL, a lock, memory, or a core another "
        "program held",
    ),
    ("max err", "largest absolute difference from the float64 reference"),
    (
        "of roof",
        "achieved GFLOP/s / what the roofline allows at its intensity (f shows it); "
        "narrow tables call it roof",
    ),
    ("imbalance", "(partui run / show) busiest worker's busy time / the mean; 1.0 = even"),
    (
        "kern, exec, strat",
        "narrow tables abbreviate: vec = vectorized, thr = threads, "
        "proc = processes, chan = channel, spat = spatial",
    ),
]
