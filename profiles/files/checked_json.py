"""Reading JSON that partui did not necessarily write: bounded before parsing, checked after.

`parse_bounded` caps the size and the nesting depth before the parser sees the text (a
100,000-deep file would exhaust the parser's recursion; /dev/zero would never end). NaN,
Infinity and numbers that overflow parse as floats: the field checks refuse them, naming
the field. `Check` holds the
small vocabulary the snapshot and baseline-book loaders share: every failure is a
FileProblem with one line naming the field.
"""

from __future__ import annotations

import json
import math
import re

from partui.profiles.files.safe_files import read_limited

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class FileProblem(ValueError):
    """A file partui will not use; the message is one line naming what is wrong."""


def nesting_depth(raw: bytes) -> int:
    """The deepest [ / { nesting of a JSON text (strings skipped), without parsing it."""
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    import numpy as np  # here: `partui --help` reaches this module and must not load numpy

    steps = np.frombuffer(brackets, dtype=np.uint8)
    depth = np.cumsum(np.where((steps == ord("[")) | (steps == ord("{")), 1, -1))
    return int(depth.max())


def parse_bounded(path, max_bytes: int, max_depth: int, what: str):
    """Read and parse a JSON file within the limits; FileProblem (one line) otherwise.

    Missing files raise FileNotFoundError, folders IsADirectoryError (callers word those).
    """
    try:
        raw = read_limited(path, max_bytes, what)
    except (FileNotFoundError, IsADirectoryError):
        raise
    except ValueError as exc:
        raise FileProblem(str(exc)) from None
    except OSError as exc:
        raise FileProblem(f"{path}: cannot read: {exc.strerror or exc}") from None
    depth = nesting_depth(raw)
    if depth > max_depth:
        raise FileProblem(
            f"{path}: nested {depth} levels deep, more than a partui {what} has ({max_depth})"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FileProblem(f"{path}: not a partui {what} (not UTF-8 text)") from None
    try:
        return json.loads(text)  # NaN, Infinity and 1e400 parse; the field checks refuse them
    except json.JSONDecodeError as exc:
        body = text.strip()
        cut = body[:1] in "{[" and body[-1:] not in "}]"  # a JSON document that stops early
        state = "truncated" if cut or exc.pos >= len(body) else "not valid JSON"
        raise FileProblem(
            f"{path}: {state} (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer of more than 4300 digits
        first = str(exc).split(";")[0].split("\n")[0][:80]
        raise FileProblem(f"{path}: not a partui {what} ({first})") from None


def shown(value, width: int = 40) -> str:
    """A value as it appears in a message: JSON, cut short."""
    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        text = type(value).__name__
    return text if len(text) <= width else text[: width - 3] + "..."


class Check:
    """Field checks that raise FileProblem('<where>: expected ..., got ...')."""

    @staticmethod
    def obj(v, where: str) -> dict:
        if not isinstance(v, dict):
            raise FileProblem(f"{where}: expected an object, got {shown(v)}")
        return v

    @staticmethod
    def field(d: dict, key: str, where: str):
        if key not in d:
            raise FileProblem(f"{where}: missing field {key!r}")
        return d[key]

    @staticmethod
    def keys(d: dict, allowed, where: str) -> None:
        extra = [k for k in d if k not in allowed]
        if extra:
            raise FileProblem(f"{where}: unknown field {shown(extra[0])}")

    @staticmethod
    def array(v, where: str, max_len: int, min_len: int = 0) -> list:
        if not isinstance(v, list):
            raise FileProblem(f"{where}: expected a list, got {shown(v)}")
        if not min_len <= len(v) <= max_len:
            raise FileProblem(f"{where}: {len(v)} items, expected {min_len} to {max_len}")
        return v

    @staticmethod
    def integer(v, where: str, lo: int, hi: int) -> int:
        if not isinstance(v, int) or isinstance(v, bool):
            raise FileProblem(f"{where}: expected an integer, got {shown(v)}")
        if not lo <= v <= hi:
            raise FileProblem(f"{where}: {shown(v)} is out of range ({lo} to {hi})")
        return v

    @staticmethod
    def number(
        v, where: str, lo: float = 0.0, hi: float = 1e15, positive: bool = False, null: bool = False
    ):
        if v is None and null:
            return v
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise FileProblem(
                f"{where}: expected a number{' or null' if null else ''}, got {shown(v)}"
            )
        if not math.isfinite(v):
            raise FileProblem(f"{where}: expected a finite number, got {shown(v)}")
        if positive and not v > 0:
            raise FileProblem(f"{where}: expected a number above 0, got {shown(v)}")
        if not lo <= v <= hi:
            raise FileProblem(f"{where}: {shown(v)} is out of range ({lo:g} to {hi:g})")
        return v

    @staticmethod
    def text(v, where: str, max_len: int = 10_000, null: bool = False):
        if v is None and null:
            return v
        if not isinstance(v, str):
            raise FileProblem(f"{where}: expected a string, got {shown(v)}")
        if len(v) > max_len:
            raise FileProblem(f"{where}: {len(v)} characters, more than {max_len}")
        return v

    @staticmethod
    def boolean(v, where: str) -> bool:
        if not isinstance(v, bool):
            raise FileProblem(f"{where}: expected true or false, got {shown(v)}")
        return v

    @staticmethod
    def choice(v, choices, where: str) -> str:
        if not isinstance(v, str) or v not in choices:
            raise FileProblem(
                f"{where}: unknown value {shown(v)}; expected one of {', '.join(choices)}"
            )
        return v


def json_safe(obj):
    """JSON has no NaN or infinity: write them as null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return json_safe(obj.item())
    return obj
