"""Plain text shared by both front ends: escaping of untrusted strings, tables and number
formats, run and snapshot reports.

Public: `safe_text`, `table`, `reports`, `conditions_text`.
"""
