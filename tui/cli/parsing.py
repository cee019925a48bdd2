"""The command line's argument parsing: one-line errors, defaults in the help, options every
command has. Imports nothing heavy: `partui --help` starts fast."""

from __future__ import annotations

import argparse
import os
import sys

from partui.tui.text.safe_text import error_line

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
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
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
