"""The options every command that runs layers shares, read into a RunConfig; integers
written with ASCII digits only."""

from __future__ import annotations

import argparse
import os
import re

from partui.kernels.model.layers import LAYER_NAMES, MAX_BATCH
from partui.kernels.plan.axes import EXECUTORS, KERNELS, STRATEGIES
from partui.profiles.records.limits import MAX_WORKERS, default_workers
from partui.tui.cli.errors import UsageError
from partui.tui.text.safe_text import echo

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:  # loads on first use: `partui --help` does not need it
    from partui.profiles.records.config import RunConfig


_INT = re.compile(r"[+-]?[0-9]+")


def ascii_int(text: str) -> int:
    """An integer written with ASCII digits only (int() also takes other scripts' digits)."""
    if not _INT.fullmatch(text.strip()):
        raise argparse.ArgumentTypeError(f"expected an integer, got {echo(text)}")
    return int(text)


def parse_int(text: str, what: str) -> int:
    """ascii_int for values inside a list option: UsageError naming the option."""
    if not _INT.fullmatch(text.strip()):
        raise UsageError(f"{what} takes integers like 1,2,4, got {echo(text.strip())}")
    return int(text)


def add_config_arguments(p, layer_required: bool = True) -> None:
    """The options that make a RunConfig, shared by every command that runs layers."""
    add_layer_argument(p, layer_required)
    p.add_argument(
        "--strategy",
        default="batch",
        choices=list(STRATEGIES),
        metavar="S",
        help="how the work is cut: " + ", ".join(STRATEGIES),
    )
    add_kernel_argument(p)
    p.add_argument(
        "--executor",
        default="threads",
        choices=list(EXECUTORS),
        metavar="E",
        help="who runs the tasks: " + ", ".join(EXECUTORS),
    )
    p.add_argument(
        "--workers",
        type=ascii_int,
        default=default_workers(),
        metavar="N",
        help=f"worker threads or processes (BLAS threads for --executor blas), 1..{MAX_WORKERS}",
    )
    add_scheduler_argument(p)
    add_repeat_arguments(p)


def add_layer_argument(p, required: bool = True) -> None:
    p.add_argument(
        "--layer",
        required=required,
        choices=LAYER_NAMES,
        metavar="LAYER",
        help="one of: " + ", ".join(LAYER_NAMES),
    )


def add_kernel_argument(p) -> None:
    p.add_argument(
        "--kernel",
        default="vectorized",
        choices=list(KERNELS),
        metavar="K",
        help="loops or vectorized",
    )


def add_repeat_arguments(p, each: str = "") -> None:
    """--batch, --repeat, --warmup, --seed; `each`: what the repeats are counted per."""
    p.add_argument(
        "--batch", type=ascii_int, default=64, metavar="B", help=f"samples, 1..{MAX_BATCH}"
    )
    p.add_argument("--repeat", type=ascii_int, default=5, metavar="R", help="timed repeats" + each)
    p.add_argument(
        "--warmup", type=ascii_int, default=1, metavar="W", help="untimed warm-up repeats" + each
    )
    p.add_argument(
        "--seed", type=ascii_int, default=0, metavar="K", help="seed of inputs and weights"
    )


def add_scheduler_argument(p, when: str = "--executor dask") -> None:
    """`when`: the flag that asks for Dask, as the command spells it."""
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help=f"{when}: the address of a running Dask scheduler (tcp://HOST:PORT) "
        "instead of a LocalCluster partui starts and stops itself; default "
        "$PARTUI_DASK_SCHEDULER. partui never stops a cluster it did not start",
    )


def scheduler_from(args, executors, when: str = "--executor dask") -> str:
    """--scheduler, else $PARTUI_DASK_SCHEDULER, when a Dask executor is asked for."""
    given = getattr(args, "scheduler", None)
    if given is not None and "dask" not in executors:
        raise UsageError(f"--scheduler applies to {when}")
    if "dask" not in executors:
        return ""
    address = given if given is not None else os.environ.get("PARTUI_DASK_SCHEDULER", "")
    address = address.strip()
    if given is not None and not address:
        raise UsageError("--scheduler needs an address like tcp://127.0.0.1:8786")
    return address


def config_from(args, **overrides) -> RunConfig:
    from partui.profiles.records.config import RunConfig

    values = dict(
        layer=args.layer,
        strategy=args.strategy,
        kernel=args.kernel,
        executor=args.executor,
        workers=args.workers,
        batch=args.batch,
        repeats=args.repeat,
        warmup=args.warmup,
        seed=args.seed,
        pass_kind=getattr(args, "pass_kind", "forward"),
        combine=getattr(args, "combine", "reduce"),
        scheduler=scheduler_from(args, [args.executor]),
    )
    values.update(overrides)
    return RunConfig(**values)


def noise_floor(text: str) -> float:
    """A ratio from 1 (no floor: any significant difference counts) to 10."""
    try:
        value = float(text.strip())
    except ValueError:
        value = float("nan")
    if not 1.0 <= value <= 10.0:  # also NaN
        raise argparse.ArgumentTypeError(f"expected a ratio from 1 to 10, got {echo(text)}")
    return value


def add_noise_floor_argument(p) -> None:
    """--noise-floor: the smallest ratio of medians that counts as a difference."""
    from partui.profiles.records.verdict_rules import (
        ALPHA,
        LEVEL,
        MIN_REPEATS,
        NOISE_FLOOR,
        SPREAD_LIMIT,
    )

    p.add_argument(
        "--noise-floor",
        type=noise_floor,
        default=NOISE_FLOOR,
        metavar="X",
        help=f"the smallest ratio of medians that counts as a difference (default "
        f"{NOISE_FLOOR:g}: back-to-back runs of one configuration on a shared machine drift "
        f"by several percent). A pair is 'faster'/'slower' only where Mann-Whitney U gives "
        f"p < {ALPHA:g} and the whole {100 * LEVEL:.0f}%% bootstrap interval of the ratio of "
        f"medians (seeded: the same repeats give the same answer) lies beyond X, and beyond "
        f"how far apart one configuration's own runs were where it had several; with fewer "
        f"than {MIN_REPEATS} repeats a side, or an interval whose ends are more than "
        f"{SPREAD_LIMIT:g}x apart, no verdict is given (too few repeats, too spread). 1 "
        "turns the floor off",
    )
