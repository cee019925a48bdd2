"""Text from files and from the command line, made safe to show.

A snapshot's note, a machine name or a file name may hold escape sequences (a terminal
would obey them: set the window title, clear the screen) or Rich markup (Textual would
parse it, and fail on a stray "[/]"). The command line strips control characters; the
dashboard strips them too and shows such text as text, never as markup. Values echoed in
errors are cut to ECHO_MAX characters.
"""

from __future__ import annotations

import re

ECHO_MAX = 80
# C0 controls but tab and newline, DEL, C1 controls (0x9b alone starts a CSI sequence)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_QUOTED = re.compile(rf"'([^'\n]{{{ECHO_MAX}}})[^'\n]+'")


def printable(text, keep_newlines: bool = True) -> str:
    """`text` without control characters (a shown escape becomes a '?')."""
    pattern = _CONTROL if keep_newlines else _CONTROL_LINE
    return pattern.sub("?", str(text))


def clip(value, width: int = ECHO_MAX) -> str:
    text = str(value)
    return text if len(text) <= width else text[:width] + "..."


def echo(value) -> str:
    """A user's value quoted in a message: printable, one line, at most ECHO_MAX characters."""
    return repr(clip(printable(value, keep_newlines=False)))


def error_line(message) -> str:
    """An error for the terminal: one line, no control characters, quoted values cut short."""
    line = printable(message, keep_newlines=False)
    return _QUOTED.sub(lambda m: f"'{m.group(1)}...'", line)
