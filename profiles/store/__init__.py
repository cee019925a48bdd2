"""Runs kept and compared: profile snapshots, the baseline book, side-by-side analysis, and
exports (Chrome trace, CSV).

Public: `snapshot` (the record, save, load, finding files), `snapshot_validation` (what a
loaded file must pass), `baselines`, `analysis`, `export`.
"""
