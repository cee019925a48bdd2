"""`partui roofline`: this machine's roofs, and every layer's best configurations under them."""

from __future__ import annotations

import sys
import time

from partui.kernels.model.layers import LAYER_NAMES, MAX_BATCH
from partui.tui.cli.commands.options import ascii_int
from partui.tui.cli.errors import UsageError
from partui.tui.text.safe_text import echo, printable
from partui.tui.text.table import print_json, table

TRAFFIC_HELP = (
    "Traffic model: the minimum bytes per repeat (the batch's input read once, its output "
    "written once, the weights and bias read once, float32); intensity = FLOPs / those "
    "bytes; achieved GFLOP/s = FLOPs / median time. Each point is compared with the memory "
    "roof of the level its bytes fit in (L1 and L2 per worker, L3 in all, else DRAM) and the "
    "GEMM peak at its worker count; of_roof = achieved / attainable there, never clamped."
)


def register(sub) -> None:
    p = sub.add_parser(
        "roofline",
        help="this machine's roofs (GEMM peak, L1/L2/L3/DRAM bandwidth) and each layer under them",
        description="Print this machine's roofs, measured here and kept with the date and CPU "
        "(compute: the float32 GEMM peak at 1..N threads; memory: the memory mountain's "
        "read bandwidth well inside L1, L2, L3 and beyond L3, at 1 and N threads), then "
        "every layer's best 1-worker and N-worker configuration placed under them: from "
        "the baseline book, else a quick measurement. " + TRAFFIC_HELP + " Progress goes "
        "to stderr. Exit 1 if a run gave a wrong answer, 2 for bad input, 130 on Ctrl+C.",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="one JSON object: roofs (name, kind, value, unit, threads, ...) and points "
        "(layer, config, intensity_flop_per_byte, gflops, bound, of_roof, ...)",
    )
    p.add_argument(
        "--remeasure",
        action="store_true",
        help="measure the roofs again now (a few seconds) instead of using the kept ones",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="rough roofs (small GEMM, short samples) and 3 repeats per configuration: "
        "seconds, for a smoke test; its roofs are not kept",
    )
    p.add_argument(
        "--layers",
        metavar="L,L",
        help="only these layers (comma-separated, 'network' for the whole forward pass); "
        "default: every layer and the network",
    )
    p.add_argument(
        "--batch", type=ascii_int, default=64, metavar="B", help=f"samples, 1..{MAX_BATCH}"
    )
    p.set_defaults(func=cmd_roofline)


def _layers(text: str | None) -> list[str]:
    if text is None:
        return list(LAYER_NAMES)
    names = list(dict.fromkeys(v.strip() for v in text.split(",") if v.strip()))
    unknown = [n for n in names if n not in LAYER_NAMES]
    if unknown or not names:
        raise UsageError(
            f"unknown layer {', '.join(map(echo, unknown)) or echo(text)}; "
            f"choose from {', '.join(LAYER_NAMES)}"
        )
    return names


def cmd_roofline(args) -> int:
    from partui.profiles.roofline import roofs as roofs_mod
    from partui.profiles.roofline.configs import choose
    from partui.profiles.roofline.placing import place
    from partui.profiles.roofline.roofs import RoofSettings
    from partui.profiles.store.baselines import BaselineBook
    from partui.tui.cli.commands.preflight import compile_ahead

    layers = _layers(args.layers)
    if not 1 <= args.batch <= MAX_BATCH:
        raise UsageError(f"batch must be an integer from 1 to {MAX_BATCH}, got {args.batch}")
    t0 = time.monotonic()

    def progress(text: str) -> None:
        print(f"[{time.monotonic() - t0:5.1f}s] {text}", file=sys.stderr, flush=True)

    if args.quick:
        roofs, problem = roofs_mod.measure(RoofSettings.quick(), progress), None
    else:
        roofs, problem = roofs_mod.cached_or_measured(args.remeasure, progress=progress)
    if problem:
        print(f"partui: {problem}", file=sys.stderr)
    compile_ahead(layers)
    book = BaselineBook()
    if book.problem:
        print(f"partui: {book.problem}", file=sys.stderr)
    chosen, failures = choose(
        layers, roofs.threads, args.batch, book, repeats=3 if args.quick else 5, progress=progress
    )
    points = []
    for c in chosen:
        cfg = c.config
        p = place(
            roofs, cfg.layer, cfg.strategy, cfg.executor, cfg.workers, cfg.batch,
            (c.median_ms, c.min_ms, c.max_ms), c.source,
        )  # fmt: skip
        if p is not None:
            points.append(p)
    for line in failures:
        print(f"partui: wrong answer, not placed: {printable(line, False)}", file=sys.stderr)
    if args.json:
        print_json(
            {
                "measured": roofs.measured,
                "machine_key": roofs.machine_key,
                "cpu_model": roofs.cpu_model,
                "threads": roofs.threads,
                "capacity_bytes": roofs.capacity,
                "roofs_seconds": roofs.seconds,
                "roofs_load_average": roofs.load_average,
                "traffic_model": TRAFFIC_HELP,
                "roofs": [r.to_dict() for r in roofs.roofs],
                "points": [p.to_dict() for p in points],
            },
            indent=1,
        )
    else:
        print_report(roofs, points)
    return 1 if failures else 0


def print_report(roofs, points) -> None:
    from partui.profiles.system.units import size_text

    print(
        f"Roofs of {printable(roofs.cpu_model, False)}, measured {roofs.measured} "
        f"in {roofs.seconds:.1f} s (load {roofs.load_average}); a roof is its best sample:"
    )
    rows = [
        [
            r.name,
            r.kind,
            r.threads,
            f"{r.value:.1f} {r.unit}",
            f"{r.median:.1f}",
            f"{r.low:.1f}",
            size_text(r.size_bytes) if r.kind == "memory" else f"GEMM {r.size_bytes}^3",
        ]
        for r in roofs.roofs
    ]
    headers = ["roof", "kind", "threads", "best", "median", "slowest", "samples", "measured on"]
    rows = [[*row[:6], r.samples, row[6]] for row, r in zip(rows, roofs.roofs, strict=True)]
    print(table(headers, rows, "llrrrrrl"))
    print()
    rows = [
        [
            p.layer,
            p.config,
            f"{p.intensity_flop_per_byte:.2f}",
            f"{p.gflops:.2f}",
            f"{p.attainable_gflops:.1f}",
            f"{p.bound} ({p.memory_roof})" if p.bound == "memory" else "compute",
            f"{p.of_roof:.0%}" + (" ABOVE ROOF" if p.of_roof > 1 else ""),
            p.source,
        ]
        for p in points
    ]
    print(
        table(
            ["layer", "config", "FLOP/B", "GFLOP/s", "roof", "bound", "of roof", "time from"],
            rows,
            "llrrrlrl",
        )
    )
    print()
    print(TRAFFIC_HELP)
    if any(p.of_roof > 1 for p in points):
        print(
            "ABOVE ROOF: a point beat the roof it is compared with: that roof was measured "
            "too low (re-measure with --remeasure on a quiet machine)."
        )
