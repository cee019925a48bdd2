"""Plain-text tables and number formats for the command line."""

from __future__ import annotations


def print_json(obj, **kwargs) -> None:
    """One JSON document on stdout (json loads here: `partui --help` never needs it)."""
    import json

    print(json.dumps(obj, **kwargs))


def ratio_text(on_cpu: float) -> str:
    """An on-CPU ratio in 4 characters, the same in the dashboard and the reports. Above 1
    the worker used CPU outside its tasks' wall time (waking up, handing over, threads of
    its own): "1.0+", not a figure that reads as more than all of the time."""
    if on_cpu != on_cpu:
        return "-"
    return "1.0+" if on_cpu > 1.005 else f"{on_cpu:4.2f}"


def table(headers: list[str], rows: list[list], align: str | None = None) -> str:
    """A fixed-width table; `align` is one 'l' or 'r' per column (numbers right by default)."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    if align is None:
        align = "".join("r" if rows and _numeric(rows[0][i]) else "l" for i in range(len(headers)))

    def fmt(row):
        return "  ".join(
            c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(row, widths, align)
        ).rstrip()

    lines = [fmt(headers), fmt(["-" * w for w in widths])]
    lines += [fmt(r) for r in cells]
    return "\n".join(lines)


def _numeric(value) -> bool:
    if isinstance(value, (int, float)):
        return True
    text = str(value).rstrip("%xms ").replace(",", "")
    try:
        float(text)
        return True
    except ValueError:
        return False


def ms(value: float) -> str:
    if value != value:  # nan
        return "-"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def short_ms(value: float) -> str:
    """Milliseconds in as few characters as read well: 3 significant digits ("9", "3.6",
    "16.5"), whole from 1000 on ("4810", never "4.81e+03")."""
    return f"{value:.0f}" if value >= 1000 else f"{value:.3g}"


def flops_text(n: float) -> str:
    for unit, scale in (("GFLOP", 1e9), ("MFLOP", 1e6), ("kFLOP", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} FLOP"
