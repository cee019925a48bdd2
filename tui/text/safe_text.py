"""Text from files and from the command line, made safe to show.

A snapshot's note, a machine name, a folder's name or an environment variable may hold
escape sequences (a terminal would obey them: set the window title, write the clipboard,
clear the screen), bidirectional overrides (U+202E shows "exe.txt" as "txt.exe") or Rich
markup (Textual would parse it, and fail on a stray "[/]"). `printable` is the one way such
text reaches a terminal, from the command line and the dashboard alike: every C0/C1 control
and bidi control becomes a visible escape (\x1b, \u202e); the dashboard also shows such text
as text, never as markup. Values echoed in errors are cut to ECHO_MAX characters.
"""

from __future__ import annotations

import re

ECHO_MAX = 80
# C0 controls, DEL, C1 controls (0x9b alone starts a CSI sequence), and the bidirectional
# marks, embeddings, overrides and isolates (they reorder what follows them on the line)
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")  # tab and newline kept
_CONTROL_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")
_QUOTED = re.compile(rf"'([^'\n]{{{ECHO_MAX}}})[^'\n]+'")


def _escaped(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text, keep_newlines: bool = True) -> str:
    """`text` with every control and bidi character shown as an escape (ESC as \\x1b)."""
    pattern = _CONTROL if keep_newlines else _CONTROL_LINE
    return pattern.sub(_escaped, str(text))


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
