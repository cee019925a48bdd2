"""`partui demo NAME`: one lab experiment, headless, with its table and explanation."""

from __future__ import annotations

import sys

from partui.profiles.system.units import size_text
from partui.tui.cli.errors import UsageError
from partui.tui.cli.parsing import RawDescriptionFormatter
from partui.tui.text.safe_text import echo
from partui.tui.text.table import print_json, table


def register(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="a lab experiment: ILP, SIMD, strides, the memory mountain, false sharing...",
        describe=_description,
        formatter_class=RawDescriptionFormatter,
    )
    p.add_argument(
        "name",
        nargs="?",
        metavar="NAME",
        help="the experiment (without it: the list, with memory needs)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: points with their raw samples, summary, explanation",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="fewer sizes and repeats, smaller arrays (a few seconds)",
    )
    p.set_defaults(func=cmd_demo)


def _description() -> str:
    # Built when `partui demo --help` shows it: the experiments' module loads numpy.
    from partui.profiles.lab.runner import EXPERIMENT_GROUP, EXPERIMENTS, GROUPS

    listing = "\n".join(
        f"  {group}:\n"
        + "\n".join(
            f"    {name:<14} {desc}"
            for name, desc in EXPERIMENTS.items()
            if EXPERIMENT_GROUP[name] == group
        )
        for group in GROUPS
    )
    return (
        "Run one lab experiment on this machine and explain what it shows. "
        "Every point is the median of several repeats, with its min-max; a verdict "
        "('N.Nx slower') is given only where the spreads do not overlap. Progress "
        "goes to stderr. Exit 0 when done, 1 when memory is short, 2 for an unknown "
        "experiment, 130 on Ctrl+C.\n\nexperiments:\n" + listing
    )


def cmd_demo(args) -> int:
    from partui.profiles.lab import runner as memlab

    if args.name is None:
        return _list(args.json)
    if args.name not in memlab.EXPERIMENTS:
        raise UsageError(
            f"unknown experiment {echo(args.name)}; choose one of: {', '.join(memlab.EXPERIMENTS)}"
        )
    try:
        need = memlab.check_memory(args.name, args.quick)
    except memlab.MemoryShort as exc:
        print(f"partui: {exc}", file=sys.stderr)
        return 1
    print(
        f"{args.name}: needs {size_text(need)} of memory; "
        f"{'quick run' if args.quick else 'full run (--quick for a short one)'}; "
        f"Ctrl+C stops it",
        file=sys.stderr,
        flush=True,
    )
    result = memlab.run_experiment(args.name, emit=_progress, quick=args.quick)
    if args.json:
        print_json(result.to_dict())
    else:
        print(report(result))
    return 130 if result.cancelled else 0


def _progress(point) -> None:
    print(
        f"  {point.series:<28} {_x_text(point):>10}  {_y(point.median)} "
        f"({_y(point.min)}-{_y(point.max)}) {point.y_label}",
        file=sys.stderr,
        flush=True,
    )


def _list(as_json: bool) -> int:
    from partui.profiles.lab.runner import EXPERIMENT_GROUP, EXPERIMENTS, GROUPS, memory_need

    rows: dict[str, dict] = {
        name: {
            "group": EXPERIMENT_GROUP[name],
            "description": desc,
            "memory_need": memory_need(name),
            "memory_need_quick": memory_need(name, quick=True),
        }
        for name, desc in EXPERIMENTS.items()
    }
    if as_json:
        print_json(rows, indent=2)
        return 0
    blocks = []
    for group in GROUPS:
        members = [(n, r) for n, r in rows.items() if r["group"] == group]
        if members:
            blocks.append(
                f"{group}:\n"
                + table(
                    ["experiment", "what it measures", "memory", "--quick"],
                    [
                        [
                            n,
                            r["description"],
                            size_text(r["memory_need"]),
                            size_text(r["memory_need_quick"]),
                        ]
                        for n, r in members
                    ],
                    align="llrr",
                )
            )
    print("\n\n".join(blocks))
    print("\nrun one with: partui demo NAME [--quick] [--json]")
    return 0


def _x_text(point) -> str:
    if "bytes" in point.x_label:
        return size_text(int(point.x))
    return f"{point.x:g}"


def _y(v: float) -> str:
    if v != v:
        return "-"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def report(result) -> str:
    """The points as a table (one row per x, one column per series), then the explanation."""
    series = list(dict.fromkeys(p.series for p in result.points))
    xs = sorted({p.x for p in result.points})
    first = result.points[0] if result.points else None
    lines = []
    if first is not None:
        reps = max(len(p.samples) for p in result.points)
        units = {s: next(p.y_label for p in result.points if p.series == s) for s in series}
        mixed = len(set(units.values())) > 1  # then each column names its unit
        lines.append(
            f"{result.experiment}: {'' if mixed else first.y_label + ', '}median "
            f"(min-max) of {reps} repeats{', quick run' if result.quick else ''}"
        )
        headers = [first.x_label] + [f"{s} [{units[s]}]" if mixed else s for s in series]
        rows = []
        for x in xs:
            row = [size_text(int(x)) if "bytes" in first.x_label else f"{x:g}"]
            for s in series:
                p = result.point(s, x)
                row.append(f"{_y(p.median)} ({_y(p.min)}-{_y(p.max)})" if p else "")
            rows.append(row)
        lines.append(table(headers, rows, align="r" * len(headers)))
        lines.append("")
    if result.markers:
        lines.append(
            "marked: "
            + ", ".join(
                f"{label} at "
                + (size_text(int(x)) if first and "bytes" in first.x_label else f"{x:g}")
                for x, label in result.markers
            )
        )
        lines.append("")
    lines.append(result.explanation)
    lines.append(
        f"\n({result.duration_s:.1f} s; machine load average "
        f"{result.machine.get('load_average_1min') or 0:.1f} at the start on "
        f"{result.machine.get('cores')} cores)"
    )
    return "\n".join(lines)
