"""`partui bench`: the kernels against this machine's GEMM limit, with a verdict on the targets."""

from __future__ import annotations

import sys
import time

from partui.kernels.model.layers import LAYER_NAMES, MAX_BATCH
from partui.profiles.records.limits import MAX_WORKERS
from partui.profiles.records.verdict_rules import method_text
from partui.tui.cli.commands.options import add_noise_floor_argument, ascii_int, parse_int
from partui.tui.cli.commands.preflight import (
    check_output,
    check_writable_dir,
    compile_ahead,
    tune_ahead,
)
from partui.tui.cli.errors import UsageError
from partui.tui.text.safe_text import echo
from partui.tui.text.table import ms, print_json, table

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from pathlib import Path

    from partui.profiles.records.bench_result import BenchResult


def register(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="GEMM peak, the best strategy per layer and worker count, target verdicts",
        description="Measure this machine's float32 GEMM peak at 1 and 2 threads (and all "
        "cores), then for every layer at batch 64 the best strategy and executor "
        "per worker count (median, min-max, GFLOP/s, share of the GEMM peak), and "
        "the whole network. Every candidate is screened, then the finalists are "
        "measured again in interleaved rounds; every run is verified against the "
        "float64 reference. Prints a verdict on the performance targets and saves "
        "a snapshot. Progress goes to stderr. Exit 1 if any configuration gave a "
        "wrong answer, 2 for bad input, 130 on Ctrl+C.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a few repeats only: proves everything runs and is verified in seconds "
        "(CI smoke); its figures are rough",
    )
    p.add_argument(
        "--out",
        metavar="FILE",
        help="save the snapshot here (default: bench-<date>-<time>.json in "
        "$PARTUI_SNAPSHOT_DIR or ~/.local/share/partui/snapshots); the "
        "chosen configurations' runs, the summary under baseline.bench",
    )
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument(
        "--layers",
        metavar="L,L",
        help="only these layers (comma-separated; "
        "'network' for the whole forward pass); default: all of them",
    )
    p.add_argument(
        "--workers",
        metavar="N,N",
        help="worker counts to compare (default: 1, 2 and the core count)",
    )
    p.add_argument(
        "--batch",
        type=ascii_int,
        default=64,
        metavar="B",
        help=f"samples, 1..{MAX_BATCH} (default 64)",
    )
    p.add_argument(
        "--rounds",
        type=ascii_int,
        metavar="R",
        help="interleaved rounds of the finalists (default 5, 1 with --quick)",
    )
    p.add_argument(
        "--repeat",
        type=ascii_int,
        metavar="N",
        help="timed repeats per finalist per round (default 10, 3 with --quick)",
    )
    p.add_argument(
        "--retune",
        action="store_true",
        help="measure the kernels' CPU-dependent choices again before the bench (GEMM "
        "shape, patch-row chunk, samples per native call; seconds) and replace this CPU's "
        "tuning file",
    )
    add_noise_floor_argument(p)
    p.set_defaults(func=cmd_bench)


def _int_list(text: str, what: str, lo: int, hi: int) -> tuple[int, ...]:
    values = tuple(sorted({parse_int(v, f"--{what}") for v in text.split(",") if v.strip()}))
    if not values or not all(lo <= v <= hi for v in values):
        raise UsageError(f"--{what} values must be from {lo} to {hi}, got {echo(text)}")
    return values


def settings_from(args):
    from partui.profiles.bench.suite import BenchSettings

    changes = {}
    if args.layers is not None:
        names = tuple(dict.fromkeys(v.strip() for v in args.layers.split(",") if v.strip()))
        unknown = [n for n in names if n not in LAYER_NAMES]
        if unknown or not names:
            raise UsageError(
                f"unknown layer {', '.join(map(echo, unknown)) or echo(args.layers)}; "
                f"choose from {', '.join(LAYER_NAMES)}"
            )
        changes["layers"] = names
    if args.workers is not None:
        workers = _int_list(args.workers, "workers", 1, MAX_WORKERS)
        changes["workers"] = workers if 1 in workers else (1, *workers)  # 1 is the baseline
    if not 1 <= args.batch <= MAX_BATCH:
        raise UsageError(f"batch must be an integer from 1 to {MAX_BATCH}, got {args.batch}")
    changes["batch"] = args.batch
    changes["noise_floor"] = args.noise_floor
    for name, key in (("rounds", "rounds"), ("repeat", "round_repeats")):
        value = getattr(args, name)
        if value is not None:
            if not 1 <= value <= 1000:
                raise UsageError(f"--{name} must be from 1 to 1000, got {value}")
            changes[key] = value
    return BenchSettings.quick(**changes) if args.quick else BenchSettings(**changes)


def _out_path(args) -> Path:
    from partui.profiles.store.snapshot import default_snapshot_dir, default_snapshot_path

    if args.out is not None:
        return check_output(args.out, "--out", args.force)
    return default_snapshot_path(check_writable_dir(str(default_snapshot_dir())), stem="bench")


def cmd_bench(args) -> int:
    from partui.profiles.bench.suite import Bench, chosen_runs, to_snapshot
    from partui.profiles.store.snapshot import save
    from partui.profiles.system.conditions import read_conditions
    from partui.tui.text.conditions_text import conditions_line

    settings = settings_from(args)
    out = _out_path(args)
    t0 = time.monotonic()

    def progress(text: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f}s] {text}", file=sys.stderr, flush=True)

    compile_ahead(settings.layer_names())
    conditions = read_conditions()
    progress(conditions_line(conditions))
    tuned = tune_ahead(retune=args.retune)
    bench = Bench(settings, progress)
    result = bench.run()
    result.tuning = tuned or {}
    if result.other_cpu_cores is not None:  # measured over the whole bench
        conditions.others_cpu = 100 * result.other_cpu_cores
    try:
        out = save(
            to_snapshot(result, chosen_runs(bench, result)),
            out,
            overwrite=args.force,
            unique=args.out is None,
        )
    except OSError as exc:
        raise UsageError(f"snapshot not saved: {exc}") from None
    progress(f"saved {out}")
    if args.json:
        print_json(result.to_dict())
    else:
        print(report(result))
        print(conditions_line(conditions))
        print(f"\nsaved {out}")
    return 1 if result.failures else 0


# ---- the text report -------------------------------------------------------------------


def _pct(v: float | None) -> str:
    """A share of a peak; '-' where the peak was not measurable (never above 100%)."""
    return "-" if v is None or v > 1.0 else f"{100 * v:.0f}%"


def report(result: BenchResult) -> str:
    lines = []
    m = result.machine
    s = result.settings
    load = result.load_average
    lines.append(
        f"{m.cpu_model}, {m.logical_cores} logical cores; batch {result.batch}; "
        f"kernel {result.kernel}; {s['screen_repeats']} screening repeats per "
        f"candidate, then {s['rounds']} interleaved round(s) x {s['round_repeats']} "
        f"repeats of the finalists; load average before/after "
        f"{_load(load['before'])} / {_load(load['after'])}"
    )
    others = result.other_cpu_cores
    if others is not None:
        lines.append(
            f"other processes used {others:.2f} cores on average while this ran"
            + (
                "  (figures with 2 workers need a second free core: treat them with care)"
                if others > 0.2
                else ""
            )
        )
    cond = result.conditions
    if cond:
        lines.append(
            "machine quiet: targets can be met"
            if cond.get("quiet")
            else "machine busy: no target is called met ("
            + "; ".join(str(r) for r in cond.get("reasons", []))
            + ")"
        )
    lines += _peak_lines(result)
    rows: list[list] = []
    if result.overhead:
        lines.append("")
        lines.append("fixed cost of one repeat on threads (empty tasks handed out and collected)")
        rows = [
            [
                w,
                f"{o['median_us']:.1f}",
                f"{o['q1_us']:.1f}-{o['q3_us']:.1f}",
                f"{o['min_us']:.1f}-{o['max_us']:.1f}",
                f"{o['repeats']:.0f}",
            ]
            for w, o in result.overhead.items()
        ]
        lines.append(table(["workers", "median us", "q1-q3", "min-max", "repeats"], rows))
    for title, bench_rows in (("layers", result.layers), ("network", result.network)):
        if not bench_rows:
            continue
        lines.append("")
        lines.append(f"{title}: best strategy/executor per worker count")
        rows = []
        for r in bench_rows:
            note = "single task fastest" if r.single_task else ""
            bp = r.best_parallel
            if r.single_task and bp:
                note += f" ({_parallel_text(bp)} {ms(bp.median_ms)} ms)"
            vs1 = _vs_1_worker(r)
            rows.append(
                [
                    r.layer,
                    r.workers,
                    f"{r.best_strategy}/{r.executor}",
                    ms(r.median_ms),
                    f"{ms(r.min_ms)}-{ms(r.max_ms)}",
                    f"{r.gflops:.1f}",
                    _pct(r.share_of_gemm_peak),
                    vs1,
                    "yes" if r.verified else "NO",
                    "?" if r.other_cpu_cores is None else f"{r.other_cpu_cores:.2f}",
                    note,
                ]
            )
        lines.append(
            table(
                [
                    "layer",
                    "workers",
                    "best",
                    "median ms",
                    "min-max",
                    "GFLOP/s",
                    "of peak",
                    "vs 1 worker",
                    "verified",
                    "others",
                    "note",
                ],
                rows,
                align="lrlrrrrrlrl",
            )
        )
        lines.append(
            "others: CPU cores other programs used while this layer was measured (a second "
            "worker needs a free core); vs 1 worker: this configuration's repeats against "
            "the best 1-worker one's, from the same interleaved rounds: "
            + method_text(s.get("noise_floor"))
        )
    lines += _time_split_lines(result)
    lines += _executor_split_lines(result)
    if result.tuning:
        from partui.tui.text.tuning_text import summary_lines

        lines += ["", "kernel choices tuned on this CPU (partui bench --retune measures again)"]
        lines += summary_lines(result.tuning)
    if result.failures:
        lines.append("")
        lines.append("WRONG ANSWERS (never chosen):")
        for f in result.failures:
            lines.append(
                f"  {f['layer']} {f['strategy']}/{f['executor']} w={f['workers']}: {f['error']}"
            )
    lines.append("")
    lines.append("targets")
    rows = [
        [t["target"], t.get("verdict", "met" if t["met"] else "NOT MET"), t["figure"]]
        for t in result.targets
    ]
    lines.append(table(["target", "verdict", "figure"], rows, align="lll"))
    lines.append(f"\n{result.seconds:.0f} s in all")
    return "\n".join(lines)


def _peak_lines(result) -> list[str]:
    """The GEMM peaks with their rounds' spread, and why a peak was not measurable now."""
    rows, problems = [], []
    for t, p in result.gemm_peak.items():
        rounds = p.get("round_gflops") or [p["gflops"]]
        ok = p.get("measurable", True)
        rows.append(
            [
                t,
                p["size"],
                f"{p['gflops']:.1f}",
                f"{min(rounds):.1f}-{max(rounds):.1f}",
                f"{p.get('rounds', 1)} x {p.get('repeats', '?')}",
                f"{p['best_gflops']:.1f}",
                "yes" if ok else "NO",
            ]
        )
        if not ok:
            what = f"{t} thread{'s' * (t != '1')}"
            problems.append(f"  {what}: {p.get('problem') or 'not measurable now'}")
    lines = ["", "float32 GEMM peak (the practical limit), thread counts in interleaved rounds"]
    lines.append(
        table(
            [
                "threads",
                "size",
                "GFLOP/s (median)",
                "rounds min-max",
                "rounds x reps",
                "best",
                "measurable",
            ],
            rows,
        )
    )
    if problems:
        lines.append("peak not measurable now, so no share of it is given:")
        lines += problems
    return lines


def _vs_1_worker(row) -> str:
    """The row against the best 1-worker configuration: a verdict with its interval, or why
    there is none; an older summary without repeats gives the ratio of medians alone."""
    if row.vs_1_worker is not None:
        return row.vs_1_worker["text"]
    speed = row.speedup_vs_best_1_worker
    return f"{speed:.2f}x (medians)" if speed and row.workers > 1 else "-"


def _parallel_text(choice) -> str:
    """The best configuration that used the workers: a split into tasks, or BLAS's threads
    inside one task (strategy `none` is no split)."""
    how = f"{choice.best_strategy}/{choice.executor}"
    if choice.executor == "blas" and choice.tasks == 1:
        return f"best on {choice.uses_workers} workers: {how}, one task on BLAS's threads"
    if choice.tasks == 1:
        return f"best on {choice.uses_workers} workers: {how}, one task"
    return f"best split {how}"


def _time_split_lines(result) -> list[str]:
    """Why a split is not W times faster, for each layer's best split: all workers' task time
    against the best 1-worker time (what splitting added), the busiest worker over the mean,
    and the repeat's wall minus the busiest worker's tasks (handing out and collecting)."""
    best1 = {r.layer: r.median_ms for r in result.rows() if r.workers == 1}
    rows = []
    for r in result.rows():
        split = r.best_parallel or (r if r.uses_workers > 1 else None)
        if r.workers < 2 or split is None or split.work_ms is None or r.layer not in best1:
            continue
        rows.append(
            [
                r.layer,
                r.workers,
                f"{split.best_strategy}/{split.executor}",
                ms(split.median_ms),
                f"{split.work_ms / best1[r.layer]:.2f}x",
                f"{split.imbalance:.2f}",
                f"{split.fixed_us:.0f}",
            ]
        )
    if not rows:
        return []
    return [
        "",
        "where a split's repeat goes: wall = (work / workers) x imbalance + fixed cost",
        table(
            ["layer", "workers", "split", "median ms", "work vs 1 worker", "imbalance", "fixed us"],
            rows,
            align="lrlrrrr",
        ),
    ]


def _executor_split_lines(result) -> list[str]:
    """The interpreter's cost per repeat against a native region's: empty tasks on each, and
    the same batch split of each layer on both, measured in the same rounds."""
    lines = []
    per = result.overhead_by_executor
    if len(per) > 1:
        rows = [
            [e, w, f"{o['median_us']:.1f}", f"{o['q1_us']:.1f}-{o['q3_us']:.1f}",
             f"{o['repeats']:.0f}"]
            for e, by_w in per.items()
            for w, o in by_w.items()
        ]  # fmt: skip
        lines += [
            "",
            "fixed cost of one repeat, empty tasks: the interpreter's hand-out (threads) "
            "against one native call (native-region)",
            table(["executor", "workers", "median us", "q1-q3", "repeats"], rows),
        ]
    if result.executor_splits:
        rows = [
            [x["layer"], x["workers"], f"{x['strategy']}/{x['executor']}", ms(x["median_ms"]),
             ms(x["work_ms"]), f"{x['imbalance']:.2f}", f"{x['fixed_us']:.0f}", x["runs"]]
            for x in result.executor_splits
        ]  # fmt: skip
        lines += [
            "",
            "the same split on threads and in a native region (medians over the rounds' runs): "
            "fixed = wall - busiest worker's tasks",
            table(
                ["layer", "workers", "split", "median ms", "work ms", "imbalance", "fixed us",
                 "runs"],
                rows,
                align="lrlrrrrr",
            ),
        ]  # fmt: skip
    return lines


def _load(values) -> str:
    return "?" if not values else " ".join(f"{v:.2f}" for v in values)
