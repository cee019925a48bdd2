"""The `partui` subcommands; each command module has `register(subparsers)` that sets `func`.

Commands: `listing` (list, info), `run`, `profiling` (sweep, show, export, compare), `bench`,
`demo`, `train`, `scaling`. Shared: `options` (the run options), `preflight` (checks before any
work), `progress` (a run's progress line), `run_report` (a run's text report), `saved_arrays`
(--save-arrays), `show_repeat` (show --repeat: one timed repeat of a saved run),
`stream_output` (--stream).
"""
