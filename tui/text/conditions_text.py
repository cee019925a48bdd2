"""Measurement conditions as text: the one line under a run, and the full listing of
`partui info --conditions`. Values read from /sys and /proc go through `printable`."""

from __future__ import annotations

from partui.tui.text.safe_text import printable

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from partui.profiles.system.conditions import Conditions


def conditions_line(c: Conditions | None, unknown: bool = True) -> str:
    """'conditions: quiet' or 'conditions: not quiet: why; ...', escaped, one line;
    `unknown`: with what this machine does not report."""
    if c is None:
        return "conditions: not recorded"
    return printable("conditions: " + c.line(unknown), keep_newlines=False)


def _known(value, text) -> str:
    return "unknown (not reported here)" if value is None else text


def conditions_report(c: Conditions) -> str:
    """Every condition read, what it means, and the verdict."""
    load = (
        None
        if c.load is None
        else " / ".join(f"{v:.2f}" for v in c.load)
        + " (1, 5, 15 min)"
        + (f" on {c.cpus} CPUs" if c.cpus else "")
    )
    boost = None if c.boost is None else ("on" if c.boost else "off")
    aslr = {0: "off (0)", 1: "partial (1)", 2: "full (2)"}
    rows = [
        ("CPU governor", _known(c.governors or None, ", ".join(c.governors))),
        ("turbo boost", _known(boost, boost)),
        ("ASLR", _known(c.aslr, aslr.get(c.aslr or 0, str(c.aslr)))),
        ("isolated CPUs", _known(c.isolated, c.isolated or "none")),
        ("load average", _known(load, load)),
        (
            "throttling",
            _known(c.throttle_since_boot, f"{c.throttle_since_boot} thermal events since boot"),
        ),
    ]
    if c.others_cpu is not None:
        rows.append(("other programs", f"{c.others_cpu / 100:.2f} core during the run"))
    lines = [f"{name:<15} {value}" for name, value in rows]
    reasons, notes = c.reasons(), c.notes()
    lines.append("")
    lines.append(
        "quiet: nothing known makes figures less stable"
        if not reasons
        else "not quiet, figures are less stable:"
    )
    lines += [f"  - {r}" for r in reasons]
    if notes:
        lines.append("to know:")
        lines += [f"  - {n}" for n in notes]
    return printable("\n".join(lines))
