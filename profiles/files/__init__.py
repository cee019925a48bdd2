"""Files partui reads and writes: the atomic writer that refuses special files, the bounded
JSON reader, and where the user's files live.

Public: `safe_files`, `checked_json`, `paths`.
"""
