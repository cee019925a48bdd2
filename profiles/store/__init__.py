"""Runs kept and compared: profile snapshots, the baseline book, side-by-side analysis, and
exports (Chrome trace, CSV).

Public: `snapshot`, `baselines`, `analysis`, `export`.
"""
