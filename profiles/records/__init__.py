"""What a run is and what it produced, as plain data: configurations and their checks, the
events a run emits, results, statistics over repeats, whether two sets of repeats differ,
and bench and training records.

Public: `config`, `limits`, `events`, `event_lines` (the `--stream` format), `results`,
`stats`, `significance` (its rules in `verdict_rules`), `train_config`, `bench_result`.
"""
