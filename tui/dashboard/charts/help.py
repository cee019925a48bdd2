"""What each chart of the profile tab shows, for the help screen."""

HELP_CHARTS = [
    (
        "worker timeline",
        "one lane per worker, █ where it ran a task, ms since the run "
        "started: gaps are idle workers, a long lane is the straggler",
    ),
    ("CPU per core", "% busy of each logical core, from the engine's sampler, the last 30 s"),
    (
        "speedup",
        "speedup against workers: the ideal line, the measured points and an "
        "Amdahl fit (s = serial fraction, its ceiling 1/s) where the fewest and the "
        "most workers differ significantly",
    ),
    ("run times", "every timed repeat, newest on the right: the noise you are reading"),
    (
        "roofline (f)",
        "GFLOP/s against FLOP/byte, log-log: roofs measured here (`partui roofline`) at the "
        "current worker count, ● the current configuration, • earlier runs, ◆ its ridge. "
        "Bytes: the minimum a repeat moves (input, weights, output once)",
    ),
]
