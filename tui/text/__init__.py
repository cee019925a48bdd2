"""Plain text shared by both front ends: escaping of untrusted strings, tables and number
formats, run and snapshot reports, one timed repeat picked out of a run.

Public: `safe_text`, `table`, `reports`, `repeat_pick`, `conditions_text`.
"""
