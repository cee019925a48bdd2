"""The `partui` command line: the dashboard with no arguments, headless subcommands otherwise.

Headless commands never import Textual, and `--help`, `--version` and `list` import
neither numpy nor numba, so they start fast and run anywhere.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from .errors import Terminated, UsageError
from .safe_text import error_line

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
ALLOW_EMPTY = {"note"}  # options where "" is a meaningful value


def terminal_columns() -> int:
    """shutil.get_terminal_size().columns without importing shutil (it loads the bz2 and lzma
    modules: a tenth of `partui --help`'s start-up)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class DefaultsFormatter(argparse.HelpFormatter):
    """Appends "(default: X)" to an option's help, unless the help already names its
    default or there is none worth showing (None, False, "")."""

    def __init__(self, prog, indent_increment=2, max_help_position=24, width=None):
        width = terminal_columns() - 2 if width is None else width  # as argparse does
        super().__init__(prog, indent_increment, max_help_position, width)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        nothing = (
            default is None or default is False or default == "" or default == argparse.SUPPRESS
        )
        if "default" in text.lower() or nothing or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """argparse, with bad input reported on one line (exit 2) instead of usage + error.

    `describe`: a function that returns the description, called only when help is shown
    (for descriptions that need heavy imports). `build`: a function that adds the parser's
    arguments, called only when this parser parses or shows its help (a command whose
    options need heavy imports: `partui --help` never loads them).
    """

    def __init__(self, *args, describe=None, build=None, **kwargs):
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)
        self._describe = describe
        self._build = build

    def _built(self) -> None:
        if self._build is not None:
            build, self._build = self._build, None
            build(self)

    def format_help(self) -> str:
        self._built()
        if self._describe is not None:
            self.description, self._describe = self._describe(), None
        return super().format_help()

    def format_usage(self) -> str:
        self._built()
        return super().format_usage()

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {error_line(message)} (see --help)\n")

    def parse_known_args(self, args=None, namespace=None):
        """An empty value ('--layers ""') is an error, never the same as leaving it out."""
        self._built()
        namespace, extras = super().parse_known_args(args, namespace)
        for action in self._actions:
            if getattr(namespace, action.dest, None) == "" and action.dest not in ALLOW_EMPTY:
                name = "/".join(action.option_strings) or action.metavar or action.dest
                self.error(f"{name} needs a value, got an empty one")
        return namespace, extras


class RawDescriptionFormatter(argparse.RawDescriptionHelpFormatter, DefaultsFormatter):
    """Descriptions and epilogs laid out as written; defaults as DefaultsFormatter."""


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("partui")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


class _VersionAction(argparse.Action):
    """--version, looked up only when asked for (importlib.metadata is not free)."""

    def __init__(
        self,
        option_strings,
        dest=argparse.SUPPRESS,
        default=argparse.SUPPRESS,
        help="print partui's version and exit",
    ):
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"partui {package_version()}")
        parser.exit(EXIT_OK)


def add_global_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--version", action=_VersionAction)
    p.add_argument(
        "--debug",
        action="store_true",
        help="on an error, print the traceback instead of one line (also PARTUI_DEBUG=1)",
    )


def debug_enabled() -> bool:
    return os.environ.get("PARTUI_DEBUG", "") not in ("", "0")


def build_parser() -> Parser:
    from . import dashboard_cli
    from .commands import bench, core, demo, profiling, train

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
    for module in (core, profiling, bench, demo, train):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--debug" in argv:  # a global flag, accepted anywhere on the line
        argv.remove("--debug")
        os.environ["PARTUI_DEBUG"] = "1"  # the engine's child process reads it too
    previous = {} if _opens_dashboard(argv) else stop_on_hangup_and_term()
    try:
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
    from partui.profiles import interrupts

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) == signal.SIG_DFL:
            previous[sig] = signal.signal(sig, _raise_terminated)
    replaced = interrupts.install()
    if replaced is not None:
        previous[signal.SIGINT] = replaced
    return previous


def _stopped(exc: BaseException) -> int:
    from partui.profiles import interrupts

    interrupts.handled()
    # CPython marks a KeyboardInterrupt that ends a string exec/eval (namedtuple's, inside an
    # import Ctrl+C landed in) as unhandled, and under `python -m` then exits by SIGINT (-2)
    # after our exit code is set. Any later string exec clears the mark.
    exec("pass", {})
    if isinstance(exc, Terminated):
        return _fail(f"stopped by {signal.Signals(exc.signum).name}", 128 + exc.signum)
    return _fail("interrupted", EXIT_INTERRUPTED)


def _main(argv: list[str]) -> int:
    from partui.kernels.axes import NotApplicable
    from partui.profiles.limits import ConfigError, RunCancelledError

    try:
        if _opens_dashboard(argv):
            from .dashboard_cli import main as dashboard_main

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
    except Exception as exc:  # never a traceback unless asked: one line, and how to get more
        hint = "" if debug_enabled() else " (--debug or PARTUI_DEBUG=1 for the traceback)"
        return _fail(f"error: {type(exc).__name__}: {exc}{hint}", EXIT_FAILED)


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
