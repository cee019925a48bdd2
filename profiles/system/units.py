"""How partui writes sizes, for people: one formatter for the command line, the dashboard and
the memory lab's own summaries."""

from __future__ import annotations

KiB = 1024
MiB = 1024 * KiB
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def size_text(n: float | None) -> str:
    """Bytes as people write them: 512 B, 4 KiB, 1.5 MiB, 2 GiB; "?" when unknown."""
    if n is None:
        return "?"
    i = 0
    while abs(n) >= 1024 and i < len(_UNITS) - 1:
        n /= 1024
        i += 1
    return f"{n:.0f} {_UNITS[i]}" if i == 0 or n == int(n) else f"{n:.1f} {_UNITS[i]}"
