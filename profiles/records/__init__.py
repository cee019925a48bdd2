"""What a run is and what it produced, as plain data: configurations and their checks, the
events a run emits, results, statistics over repeats, and bench and training records.

Public: `config`, `limits`, `events`, `event_lines` (the `--stream` format), `results`,
`stats`, `train_config`, `bench_result`.
"""
