"""Whether the user asked for tracebacks instead of one-line errors."""

from __future__ import annotations

import os


def debug_enabled() -> bool:
    return os.environ.get("PARTUI_DEBUG", "") not in ("", "0")
