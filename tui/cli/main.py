"""The `partui` command line: the dashboard with no arguments, headless subcommands otherwise.

Headless commands never import Textual, and `--help`, `--version` and `list` import
neither numpy nor numba, so they start fast and run anywhere.
"""

from __future__ import annotations

import os
import signal
import sys

from partui.tui.cli.errors import Terminated, UsageError, stop_words
from partui.tui.cli.parsing import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Parser,
    RawDescriptionFormatter,
    add_global_options,
)
from partui.tui.text.debug import debug_enabled
from partui.tui.text.safe_text import error_line


def build_parser() -> Parser:
    from partui.tui.cli import dashboard as dashboard_cli
    from partui.tui.cli.commands import (
        bench,
        demo,
        listing,
        profiling,
        roofline,
        run,
        scaling,
        train,
    )

    parser = Parser(
        prog="partui",
        usage="partui [--version] [--debug] [DASHBOARD OPTIONS] [SNAPSHOT.json]\n"
        "       partui [--debug] COMMAND [OPTIONS]",
        description="A live terminal lab for parallel profiling of a small CNN on the CPU.\n"
        "With no COMMAND, partui opens the live dashboard:\n"
        "  partui                          pick a layer and a strategy with the keys\n"
        "  partui SNAPSHOT.json            open a saved snapshot read-only\n"
        "  partui --layer conv2 --strategy channel --workers 2 --live\n"
        "                                  start on a configuration, in live mode\n"
        "In the dashboard, ? lists every key (r run, space live, s save, q quit).",
        epilog="environment:\n"
        "  PARTUI_SNAPSHOT_DIR   where snapshots and exports go unless --snapshot-dir\n"
        "                        is given (it wins); with neither,\n"
        "                        $XDG_DATA_HOME/partui/snapshots, XDG_DATA_HOME\n"
        "                        defaulting to ~/.local/share\n"
        "  PARTUI_BASELINE_BOOK  the book of best single-worker times\n"
        "                        (else $XDG_DATA_HOME/partui/baselines.json)\n"
        "  PARTUI_DEBUG=1        tracebacks instead of one-line errors (as --debug)\n"
        "  PARTUI_NUMBA_CACHE=0  compile the native kernels afresh, no disk cache\n"
        "  PARTUI_NATIVE_BLAS=0  native kernels call numpy's GEMM between numba steps\n"
        "  PARTUI_PIN_THREADS=0  the threads executor's workers are not pinned to CPUs\n"
        "See the README for the rest. Run `partui COMMAND --help` for a command's "
        "options.",
        formatter_class=RawDescriptionFormatter,
    )
    add_global_options(parser)
    dashboard_cli.add_arguments(
        parser.add_argument_group("dashboard options (with no COMMAND)"), positional=False
    )
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=Parser, prog="partui"
    )
    for module in (listing, run, profiling, bench, roofline, demo, train, scaling):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--debug" in argv:  # a global flag, accepted anywhere on the line
        argv.remove("--debug")
        os.environ["PARTUI_DEBUG"] = "1"  # the engine's child process reads it too
    previous: dict = {}
    try:
        if not _opens_dashboard(argv):
            previous = stop_on_hangup_and_term()
        return _main(argv)
    except KeyboardInterrupt as exc:  # also while numpy loads: the imports live below
        return _stopped(exc)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _raise_terminated(signum, frame):
    raise Terminated(signum)


def stop_on_hangup_and_term() -> dict:
    """SIGTERM and SIGHUP (the terminal closed) stop a headless command the way Ctrl+C
    does, so its workers are stopped and its shared memory unlinked instead of left behind;
    Ctrl+C is noted as it is raised, so one a library swallows still stops the run
    (profiles.interrupts). Returns the handlers replaced. (The dashboard handles them in its
    own event loop.)"""
    from partui.profiles.system import interrupts

    previous = {}
    from partui.tui.cli.startup_signal import while_starting

    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, while_starting):
            previous[sig] = signal.signal(sig, _raise_terminated)
    replaced = interrupts.install()
    if replaced is not None:
        previous[signal.SIGINT] = replaced
    return previous


def _stopped(exc: BaseException) -> int:
    from partui.profiles.system import interrupts

    interrupts.handled()
    # CPython marks a KeyboardInterrupt that ends a string exec/eval (namedtuple's, inside an
    # import Ctrl+C landed in) as unhandled, and under `python -m` then exits by SIGINT (-2)
    # after our exit code is set. Any later string exec clears the mark.
    exec("pass", {})
    if isinstance(exc, Terminated):
        return _fail(stop_words(exc.signum), 128 + exc.signum)
    return _fail("interrupted", EXIT_INTERRUPTED)


def _main(argv: list[str]) -> int:
    from partui.kernels.plan.axes import NotApplicable
    from partui.profiles.records.limits import ConfigError, RunCancelledError, WorkerLost

    try:
        if _opens_dashboard(argv):
            from partui.tui.cli.dashboard import main as dashboard_main

            return dashboard_main(argv)
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return EXIT_USAGE
        return int(args.func(args) or 0)
    except (UsageError, ConfigError) as exc:
        return _fail(f"error: {exc}", EXIT_USAGE)
    except NotApplicable as exc:
        return _fail(f"not applicable: {exc}", EXIT_USAGE)
    except (KeyboardInterrupt, RunCancelledError) as exc:
        return _stopped(exc)
    except BrokenPipeError:
        return EXIT_OK
    except WorkerLost as exc:  # said in words already: which worker, and what it was doing
        return _fail(f"error: {exc}", EXIT_FAILED)
    except MemoryError as exc:  # its message is often empty: say what ran out
        detail = f" ({exc})" if str(exc) else ""
        return _fail(f"error: out of memory{detail}; {_command(argv)} needs more", EXIT_FAILED)
    except Exception as exc:  # never a traceback unless asked: one line, and how to get more
        hint = "" if debug_enabled() else " (--debug or PARTUI_DEBUG=1 for the traceback)"
        return _fail(f"error: {type(exc).__name__}: {exc}{hint}", EXIT_FAILED)


def _command(argv: list[str]) -> str:
    return f"partui {argv[0]}" if argv and not argv[0].startswith("-") else "partui"


def _fail(message: str, code: int) -> int:
    if debug_enabled():
        import traceback

        traceback.print_exc()
    print(f"partui: {error_line(message)}", file=sys.stderr)
    return code


def _opens_dashboard(argv: list[str]) -> bool:
    return not argv or (argv[0] not in ("-h", "--help", "--version") and _is_dashboard_call(argv))


def _is_dashboard_call(argv: list[str]) -> bool:
    """`partui`, `partui FILE.json` and `partui --option ...` open the dashboard."""
    first = argv[0]
    return first.endswith(".json") or (first.startswith("--") and first != "--help")


if __name__ == "__main__":
    sys.exit(main())
