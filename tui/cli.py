"""The `partui` command line: the dashboard with no arguments, headless subcommands otherwise.

Headless commands never import Textual, so they start fast and run anywhere.
"""
from __future__ import annotations

import argparse
import sys

from .errors import UsageError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class Parser(argparse.ArgumentParser):
    """argparse, with bad input reported on one line (exit 2) instead of usage + error."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> Parser:
    from .commands import core
    parser = Parser(
        prog="partui",
        description="A live terminal lab for parallel profiling of a small CNN on the CPU.",
        epilog="With no command, partui opens the live dashboard:\n"
               "  partui                          pick a layer and a strategy with the keys\n"
               "  partui SNAPSHOT.json            open a saved snapshot read-only\n"
               "  partui --layer conv2 --strategy channel --workers 2 --live\n"
               "                                  start on a configuration, in live mode\n"
               "  partui --snapshot-dir DIR       where s saves and x exports\n"
               "In the dashboard, ? lists every key (r run, space live, s save, q quit).\n"
               "Snapshots go to $PARTUI_SNAPSHOT_DIR, or --snapshot-dir, or "
               "~/.local/share/partui/snapshots.\n"
               "Run `partui COMMAND --help` for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in (core,) + _optional_commands():
        module.register(sub)
    return parser


def _optional_commands() -> tuple:
    """Command modules added by later parts of partui (sweeps, snapshots, bench, demos)."""
    import importlib
    mods = []
    for name in ("profiling", "bench", "demo"):
        try:
            mods.append(importlib.import_module(f"partui.tui.commands.{name}"))
        except ModuleNotFoundError as exc:
            if exc.name != f"partui.tui.commands.{name}":
                raise
    return tuple(mods)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        return _main(argv)
    except KeyboardInterrupt:  # also while numpy loads: the imports live below, not at the top
        print("partui: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _main(argv: list[str]) -> int:
    from partui.kernels.strategies import NotApplicable
    from partui.profiles.engine import ConfigError, RunCancelledError
    try:
        if not argv or (argv[0] not in ("-h", "--help") and _is_dashboard_call(argv)):
            from .dashboard_cli import main as dashboard_main
            return dashboard_main(argv)
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return EXIT_USAGE
        return int(args.func(args) or 0)
    except (UsageError, ConfigError) as exc:
        print(f"partui: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except NotApplicable as exc:
        print(f"partui: not applicable: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (KeyboardInterrupt, RunCancelledError):
        print("partui: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # never a traceback: one line, and how to get more
        print(f"partui: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _is_dashboard_call(argv: list[str]) -> bool:
    """`partui`, `partui FILE.json` and `partui --option ...` open the dashboard."""
    first = argv[0]
    return first.endswith(".json") or (first.startswith("--") and first != "--help")


if __name__ == "__main__":
    sys.exit(main())
