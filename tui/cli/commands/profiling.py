"""`partui sweep`, `partui show`, `partui export`, `partui compare`: profiles without the
dashboard."""

from __future__ import annotations

import sys

from partui.kernels.plan.axes import EXECUTORS, LOCAL_EXECUTORS, STRATEGIES, NotApplicable
from partui.profiles.records.limits import MAX_WORKERS, default_workers
from partui.tui.cli.commands.options import (
    add_kernel_argument,
    add_layer_argument,
    add_noise_floor_argument,
    add_repeat_arguments,
    add_scheduler_argument,
    ascii_int,
    parse_int,
    scheduler_from,
)
from partui.tui.cli.commands.preflight import check_output, check_writable_dir, compile_ahead
from partui.tui.cli.commands.progress import RunProgress
from partui.tui.cli.commands.stream_output import (
    LineStream,
    add_stream_argument,
    stream_or_json,
    tee,
)
from partui.tui.cli.errors import UsageError
from partui.tui.cli.parsing import EXIT_USAGE
from partui.tui.text.reports import analysis_data, compare_data, compare_report, report
from partui.tui.text.safe_text import echo, printable
from partui.tui.text.table import ms

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from partui.profiles.records.config import RunConfig


def register(sub) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a grid of strategies x executors x workers; table + snapshot",
        description="Run every applicable combination of the given strategies, executors and "
        "worker counts for one layer (combinations that make no sense are skipped), "
        "print a table with speedups against the same configuration at 1 worker "
        "(with an interval and a verdict where the repeats support one) "
        "and against the honest baseline (the best single-worker median of any "
        "strategy for this layer, kernel and batch measured on this machine), and "
        "save everything as a snapshot. Progress goes to stderr.",
    )
    add_layer_argument(p)
    p.add_argument(
        "--strategies",
        metavar="S,S",
        default=None,
        help="comma-separated (default: every strategy the layer allows)",
    )
    add_kernel_argument(p)
    p.add_argument(
        "--executors",
        metavar="E,E",
        default=",".join(LOCAL_EXECUTORS),
        help="comma-separated: " + ", ".join(EXECUTORS) + " (default: all but dask)",
    )
    add_scheduler_argument(p, SWEEP_DASK)
    p.add_argument(
        "--workers",
        metavar="N,N",
        default=f"1,{default_workers()}",
        help=f"comma-separated worker counts, 1..{MAX_WORKERS}",
    )
    add_repeat_arguments(p, " per run")
    add_noise_floor_argument(p)
    p.add_argument(
        "--out", metavar="FILE", help="snapshot file (default: a new file in the snapshot folder)"
    )
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--note", default="", help="free text kept in the snapshot")
    p.add_argument(
        "--no-book",
        action="store_true",
        help="neither read nor update this machine's book of best single-worker "
        "times (baselines then come from this sweep only)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (every run's statistics, baselines, the snapshot's path) "
        "on stdout; progress stays on stderr",
    )
    add_stream_argument(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser(
        "show",
        help="print a snapshot as tables",
        description="Print a saved snapshot: machine, note, every run with its "
        "statistics, scaling fits and memory-lab results.",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (machine, note, every run's statistics and baseline) "
        "instead of tables; with --repeat, that repeat's figures and spans",
    )
    p.add_argument(
        "--repeat",
        metavar="N",
        help="one timed repeat of each run instead: N from 1, or fastest, slowest, median; its "
        "time, speedup, each worker's tasks, the CPU samples over it and its worker timeline",
    )
    p.add_argument(
        "--run", type=ascii_int, metavar="K", help="with --repeat: only run K (1.., as listed)"
    )
    add_noise_floor_argument(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser(
        "export",
        help="a snapshot as a Chrome trace (Perfetto) or CSV",
        description="Export a snapshot. chrome: Trace Event JSON for "
        "ui.perfetto.dev, chrome://tracing or speedscope (a lane per "
        "worker, one event per task, CPU counters). csv: one row per "
        "run. Written to stdout unless -o is given.",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--format", required=True, choices=["chrome", "csv"])
    p.add_argument("-o", "--output", metavar="OUT", help="write here instead of stdout")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "compare",
        help="two snapshots side by side: medians, ratio with its interval, verdict",
        description="For every configuration present in both snapshots: the two "
        "medians (every repeat of every run of the configuration pooled), the ratio B/A, "
        "its bootstrap interval, the Mann-Whitney p-value and a verdict: 'faster' or "
        "'slower' only where both support it beyond the noise floor, else 'no significant "
        "difference', 'too spread to conclude' or 'too few repeats'. The report opens with "
        "which file is A and which is B; differences between the two machines come next.",
    )
    p.add_argument("a", metavar="A", help="the first snapshot (A: the reference)")
    p.add_argument("b", metavar="B", help="the second snapshot (B: compared against A)")
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (machine differences, every shared configuration with "
        "ratio, ci_low, ci_high, level, p_value, significant, verdict) instead of tables",
    )
    add_noise_floor_argument(p)
    p.set_defaults(func=cmd_compare)


# ---- sweep ------------------------------------------------------------------------

SWEEP_DASK = "--executors with dask among them"
_SINGULAR = {"strategies": "strategy", "executors": "executor", "layers": "layer"}


def _names(text: str, choices, what: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise UsageError(f"--{what} needs at least one name")
    for n in names:
        if n not in choices:
            raise UsageError(
                f"unknown {_SINGULAR.get(what, what)} {echo(n)} in --{what}; "
                f"choose from {', '.join(choices)}"
            )
    return list(dict.fromkeys(names))


def _worker_counts(text: str) -> list[int]:
    out = []
    for t in text.split(","):
        n = parse_int(t, "--workers")
        if not 1 <= n <= MAX_WORKERS:
            raise UsageError(f"--workers must be from 1 to {MAX_WORKERS}, got {n}")
        out.append(n)
    return sorted(set(out))


def sweep_grid(args) -> tuple[list[RunConfig], list[str]]:
    from partui.profiles.records.config import RunConfig

    """The applicable configurations, and why the others were skipped."""
    strategies = (
        _names(args.strategies, STRATEGIES, "strategies")
        if args.strategies is not None
        else list(STRATEGIES)
    )  # those the layer does not allow are skipped below
    executors = _names(args.executors, EXECUTORS, "executors")
    scheduler = scheduler_from(args, executors, SWEEP_DASK)
    configs, skipped = [], []
    for s in strategies:
        for e in executors:
            for w in _worker_counts(args.workers):
                cfg = RunConfig(
                    args.layer,
                    strategy=s,
                    kernel=args.kernel,
                    executor=e,
                    workers=w,
                    batch=args.batch,
                    repeats=args.repeat,
                    warmup=args.warmup,
                    seed=args.seed,
                    scheduler=scheduler if e == "dask" else "",
                )
                try:
                    cfg.check()
                except NotApplicable as exc:
                    skipped.append(str(exc))
                    continue
                configs.append(cfg)
    if not configs:
        raise UsageError(
            "no applicable configuration in this grid" + (f" ({skipped[0]})" if skipped else "")
        )
    return configs, skipped


def cmd_sweep(args) -> int:
    from partui.profiles.executors.base import WorkerLost
    from partui.profiles.run.engine import Engine
    from partui.profiles.store.analysis import analyze
    from partui.profiles.store.baselines import BaselineBook
    from partui.profiles.store.snapshot import (
        Snapshot,
        default_snapshot_dir,
        default_snapshot_path,
        save,
    )

    stream_or_json(args)
    configs, skipped = sweep_grid(args)
    if args.out is not None:
        out = check_output(args.out, "--out", args.force)
    else:
        out = default_snapshot_path(check_writable_dir(str(default_snapshot_dir())))
    book = None if args.no_book else BaselineBook()
    noted = book.problem if book is not None else None
    if noted:
        print(f"partui: note: {printable(noted)}", file=sys.stderr)
    print(
        f"sweep: {len(configs)} runs ({len(skipped)} combinations not applicable, skipped), "
        f"{args.warmup} warm-up + {args.repeat} repeats each",
        file=sys.stderr,
    )
    compile_ahead(
        [args.layer],
        args.kernel,
        "pipeline" if any(c.strategy == "pipeline" for c in configs) else "",
    )
    results, failed = [], []
    stream = LineStream("sweep") if args.stream else None
    with Engine() as engine:
        for i, cfg in enumerate(configs, 1):
            prefix = f"[{i:>{len(str(len(configs)))}}/{len(configs)}] {cfg.label()} ..."
            # on a terminal, the line shows the repeat under way, then the result
            progress = RunProgress(cfg, prefix=f"{prefix} ", redraw=stream is None)
            # elsewhere the head goes out first and the time follows; beside a stream (which
            # may share the terminal) the whole line goes out at the end
            early = not progress.tty and stream is None
            lead = "" if early else prefix
            if early:
                print(prefix, end="", file=sys.stderr, flush=True)
            try:
                r = engine.run(cfg, emit=tee(progress, stream))
            except WorkerLost as exc:
                progress.done()
                print(f"{lead} failed: {printable(exc)}", file=sys.stderr)
                failed.append(f"{cfg.label()}: {exc}")
                continue
            except BaseException:
                if not progress.tty:  # end the line the prefix opened: the error has its own
                    print(file=sys.stderr)
                raise
            finally:
                progress.done()
            results.append(r)
            print(
                f"{lead} {ms(r.median_ms)} ms{'' if r.ok else '  WRONG RESULT'}{busy_mark(r)}",
                file=sys.stderr,
            )
    known = book.known(results) if book is not None else {}
    analysis = analyze(results, known, "this sweep", args.noise_floor)
    snap = Snapshot.from_results(results, note=args.note, baseline=dict(analysis.baselines))
    unsaved = None
    try:
        out = save(snap, out, overwrite=args.force, unique=args.out is None)
    except OSError as exc:  # the figures are still printed: nothing measured is lost
        unsaved = f"snapshot not saved: {exc}"
    if book is not None:
        for r in results:
            book.offer(r)
        book.save()
        if book.problem and book.problem != noted:  # a failed save; the read's note is given
            print(f"partui: note: {printable(book.problem)}", file=sys.stderr)
    if args.json:
        _print_json(
            {
                "snapshot": None if unsaved else str(out),
                "failed": failed,
                **({"not_saved": unsaved} if unsaved else {}),
                **analysis_data(analysis),
            }
        )
    else:  # with --stream, stdout holds the stream alone: the report goes to stderr
        say = _say if stream is None else _say_to_stderr
        say(report(analysis, args.repeat))  # baselines name the book's dates
        for f in failed:
            say(f"failed: {f}")
        if not unsaved:
            say(f"\nsnapshot saved to {out}")  # the folder may come from the environment
    if unsaved:
        print(
            f"partui: {printable(unsaved)}; the figures above are all there is of this sweep",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return 0 if not failed and all(r.ok for r in results) else 1


# ---- show / export / compare --------------------------------------------------------------


def _load(path: str):
    from partui.profiles.store.snapshot import load
    from partui.profiles.store.snapshot_validation import SnapshotError

    try:
        return load(path)
    except SnapshotError as exc:
        raise UsageError(str(exc)) from None


def _say(text: str = "") -> None:
    """Print text that came from a file: no escape sequence reaches the terminal."""
    print(printable(text))


def _say_to_stderr(text: str = "") -> None:
    print(printable(text), file=sys.stderr)


def busy_mark(r) -> str:
    """After a run's time: whether other programs held more than half a core meanwhile."""
    c = r.conditions
    if c is None or not c.busy:
        return ""
    return f"  busy: other programs used {c.others_cpu / 100:.1f} core"


def cmd_show(args) -> int:
    from partui.profiles.store.analysis import analyze

    snap = _load(args.file)
    if args.run is not None and args.repeat is None:
        raise UsageError("--run K goes with --repeat N")
    if args.repeat is not None:
        return show_repeat(snap, args)
    if args.json:
        _print_json(
            {
                "file": str(args.file),
                "created": snap.created,
                "partui_version": snap.partui_version,
                "schema_version": snap.schema_version,
                "machine": snap.machine.to_dict(),
                "note": snap.note,
                **analysis_data(
                    analyze(snap.results(), snap.baseline, "this snapshot", args.noise_floor)
                ),
                "lab": snap.memlab,
            }
        )
        return 0
    m = snap.machine
    _say(f"snapshot   {args.file}")
    _say(f"created    {snap.created}   partui {snap.partui_version}   schema {snap.schema_version}")
    _say(
        f"machine    {m.cpu_model or '?'}, {m.logical_cores or '?'} logical cores "
        f"({m.usable_cores or '?'} usable), Python {m.python or '?'}, "
        f"numpy {m.numpy or '?'}"
    )
    if snap.note:
        _say(f"note       {snap.note}")
    _say()
    if snap.runs:
        repeats = {r.config.repeats for r in snap.runs}
        _say(
            report(
                analyze(snap.results(), snap.baseline, "this snapshot", args.noise_floor),
                repeats.pop() if len(repeats) == 1 else None,
            )
        )
    else:
        _say("no runs")
    if snap.memlab:
        _say()
        _say(f"lab: {len(snap.memlab)} experiment(s)")
        for item in snap.memlab:
            name = item.get("experiment") or item.get("name") or item.get("kind") or "?"
            keys = ", ".join(k for k in item if k not in ("experiment", "name", "kind"))
            _say(f"  {name}: {keys}")
    return 0


def show_repeat(snap, args) -> int:
    from partui.profiles.store.analysis import analyze
    from partui.tui.cli.commands.show_repeat import picks, repeat_data, repeat_text

    chosen = picks(snap, args.repeat, args.run)
    rows = analyze(snap.results(), snap.baseline, "this snapshot").rows
    data = [repeat_data(pick, result, rows[pick.run - 1].baseline) for pick, result in chosen]
    if args.json:
        _print_json({"file": str(args.file), "repeats": data})
        return 0
    _say(f"snapshot   {args.file}")
    for (pick, result), figures in zip(chosen, data, strict=True):
        _say()
        _say(repeat_text(pick, result, figures))
    return 0


def cmd_export(args) -> int:
    from collections.abc import Iterable
    from pathlib import Path

    from partui.profiles.files.safe_files import write_text
    from partui.profiles.store.export import chrome_trace_text, csv_text

    snap = _load(args.file)
    if args.output is not None:
        out = Path(args.output).expanduser()
        if out.exists() and out.resolve() == Path(args.file).resolve():
            raise UsageError(f"-o {args.output} is the snapshot itself; choose another file")
        out = check_output(args.output, "-o", args.force)
    text: Iterable[str]
    if args.format == "chrome":  # made an event at a time: a large trace is never held whole
        text = chrome_trace_text(snap)
    else:  # a baseline's source is the file's text: escaped on its way to a terminal or file
        text = [printable(csv_text(snap))]
    if args.output is not None:
        try:
            write_text(out, text, overwrite=args.force)
        except OSError as exc:
            raise UsageError(str(exc)) from None
        print(printable(f"{args.format} export written to {out}"), file=sys.stderr)
    else:
        sys.stdout.writelines(text)
    return 0


def cmd_compare(args) -> int:
    a, b = _load(args.a), _load(args.b)
    if args.json:
        data = compare_data(a, b, args.noise_floor)
        _print_json({"a_file": str(args.a), "b_file": str(args.b), **data})
    else:
        _say(f"A  {args.a}\nB  {args.b}\n")
        _say(compare_report(a, b, args.noise_floor))
    return 0


def _print_json(data) -> None:
    """One JSON object on stdout: NaN (not measured) and infinities become null."""
    import json

    from partui.profiles.files.checked_json import json_safe

    print(json.dumps(json_safe(data), allow_nan=False))
