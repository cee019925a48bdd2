"""`partui run`: one configuration, timed and verified."""

from __future__ import annotations

import sys

from partui.tui.cli.commands.options import add_config_arguments, config_from
from partui.tui.cli.commands.preflight import (
    check_output,
    check_writable_dir,
    compile_ahead,
    warn_settings,
)
from partui.tui.cli.commands.progress import RunProgress
from partui.tui.cli.commands.run_report import run_report
from partui.tui.cli.commands.saved_arrays import ARRAYS_README, arrays_readme, save_arrays
from partui.tui.cli.commands.stream_output import (
    LineStream,
    add_stream_argument,
    stream_or_json,
    tee,
)
from partui.tui.text.table import print_json


def register(sub) -> None:
    p = sub.add_parser(
        "run",
        help="run one configuration, timed and verified",
        description="Run one layer under one strategy, kernel and executor: "
        "warm-ups, then timed repeats; every run is checked against "
        "a float64 reference. Exit 0 when verified, 1 when the result "
        "is wrong, 2 for bad input or a combination that is not "
        "applicable, 130 on Ctrl+C.",
    )
    add_config_arguments(p)
    p.add_argument(
        "--pass",
        dest="pass_kind",
        default="forward",
        choices=["forward", "backward", "train"],
        metavar="P",
        help="forward; backward (one layer: input and parameter gradients from a seeded "
        "upstream gradient); train (--layer network: forward, NLL loss, backward, "
        "gradient combination, one SGD update)",
    )
    p.add_argument(
        "--combine",
        default="reduce",
        choices=["reduce", "locked", "gather"],
        metavar="C",
        help="how partial gradients meet: reduce (per-task buffers, summed once every "
        "task's backward is done: on threads and processes by the tasks themselves, each "
        "a share; on dask a tree of adds on the workers), locked (one shared accumulator "
        "under a lock) or gather (dask only: every gradient fetched here and summed here)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (times, spans, error) instead of tables",
    )
    add_stream_argument(p)
    p.add_argument(
        "--save-arrays",
        metavar="DIR",
        help="write the run's arrays as .npy files to DIR, to check them with another "
        "library (PyTorch layouts). forward: input, weight, bias, output. "
        "backward: input, weight, bias, output_grad, input_grad, weight_grad, "
        "bias_grad. train: input, labels, <layer>.weight/.bias and their "
        "<layer>.weight.grad/.bias.grad (before the update), loss. A README.txt beside "
        "them says what was computed (the formula, the GELU form, shapes, dtypes)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace .npy files (and README.txt) of those names already in DIR",
    )
    p.set_defaults(func=cmd_run)


def cmd_run(args) -> int:
    from partui.profiles.run.engine import Engine

    cfg = config_from(args)
    cfg.check()
    stream_or_json(args)
    out_dir = check_writable_dir(args.save_arrays) if args.save_arrays else None
    if out_dir is not None:  # every file it will write, before any work
        from partui.profiles.run.passes import saved_names

        for name in [*(f"{n}.npy" for n in saved_names(cfg)), ARRAYS_README]:
            check_output(str(out_dir / name), "--save-arrays", args.force)
    warn_settings(cfg)
    if cfg.executor == "dask" and cfg.scheduler:  # an unreachable cluster: say so at once
        from partui.profiles.executors.dask_connect import reachable

        reachable(cfg.scheduler)
    compile_ahead([cfg.layer], cfg.kernel, cfg.strategy)
    stream = LineStream("run") if args.stream else None
    progress = RunProgress(cfg, redraw=stream is None)
    try:
        with Engine() as engine:
            result = engine.run(cfg, emit=tee(progress, stream), keep_arrays=out_dir is not None)
    finally:
        progress.done()
    if out_dir is not None:
        save_arrays(out_dir, result.arrays, args.force, arrays_readme(result))
    if stream is not None:  # stdout holds the stream alone; the report goes to people
        print(run_report(result), file=sys.stderr)
    elif args.json:
        from partui.profiles.files.checked_json import json_safe  # NaN (not measured) -> null

        print_json(json_safe(result.to_dict()), allow_nan=False)
    else:
        print(run_report(result))
        if out_dir is not None:
            print(f"arrays written to {out_dir}/")
    return 0 if result.ok else 1
