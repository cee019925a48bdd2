"""Reading JSON that partui did not necessarily write: bounded before parsing, checked after.

`parse_bounded` caps the size, the nesting depth and the number of values before the parser
sees the text: a 100,000-deep file would exhaust the parser's recursion, /dev/zero would
never end, and 20 million `{}` in a few MiB would take gigabytes once parsed. The pre-scan
is one pass over the bytes in fixed-size chunks (time linear in the file's size, memory a
small multiple of it), and a key given twice in one object is refused by name (JSON would
keep the last one silently). NaN, Infinity and numbers that overflow parse as floats: the
field checks refuse them, naming the field. `Check` holds the small vocabulary the snapshot
and baseline-book loaders share: every failure is a FileProblem with one line naming the
field.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from partui.profiles.files.safe_files import read_limited

_SCAN_CHUNK = 1 << 20  # bytes per step of the pre-scan: its arrays stay a few MiB
_NOT_TOKENS = bytes(b for b in range(256) if b not in b'"[]{},')


class FileProblem(ValueError):
    """A file partui will not use; the message is one line naming what is wrong."""


@dataclass(frozen=True)
class Shape:
    """What the pre-scan learned of a JSON text without parsing it."""

    depth: int  # the deepest [ / { nesting
    values: int  # containers plus commas outside strings: about the values the parser makes


def json_shape(raw: bytes) -> Shape:
    """Depth and value count of a JSON text, strings skipped, in one linear pass.

    Escapes are neutralised first (`\\\\` then `\\"` become two plain bytes, which pairs a
    run of backslashes from its left as JSON does), so every quote left opens or closes a
    string and a running parity of quotes tells strings from structure. Where the text is
    not valid JSON the figures may be off after the first fault, but the parser stops there.
    """
    import numpy as np  # here: `partui --help` reaches this module and must not load numpy

    step_of = np.zeros(256, dtype=np.int8)  # byte -> +1 (opens), -1 (closes), 0
    step_of[[ord("["), ord("{")]] = 1
    step_of[[ord("]"), ord("}")]] = -1

    plain = raw.replace(b"\\\\", b"__").replace(b'\\"', b"__") if b"\\" in raw else raw
    tokens = np.frombuffer(plain.translate(None, _NOT_TOKENS), dtype=np.uint8)
    del plain
    in_string, depth, deepest, values = 0, 0, 0, 0
    for start in range(0, len(tokens), _SCAN_CHUNK):
        c = tokens[start : start + _SCAN_CHUNK]
        quotes = (c == ord('"')).view(np.uint8)
        inside = (np.cumsum(quotes, dtype=np.uint8) + in_string) & 1  # parity survives wrapping
        in_string = int(inside[-1])
        outside = inside == 0
        step = step_of[c] * outside
        level = np.cumsum(step, dtype=np.int32)
        deepest = max(deepest, depth + int(level.max()))
        depth += int(level[-1])
        values += int(np.count_nonzero((step > 0) | ((c == ord(",")) & outside)))
    return Shape(deepest, values)


class _DuplicateKey(Exception):
    def __init__(self, key: str):
        self.key = key


def _unique_keys(pairs: list) -> dict:
    d = dict(pairs)
    if len(d) != len(pairs):
        seen = set()
        for k, _ in pairs:
            if k in seen:
                raise _DuplicateKey(k)
            seen.add(k)
    return d


def parse_bounded(path, max_bytes: int, max_depth: int, what: str, max_values: int):
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
    except MemoryError:
        raise FileProblem(f"{path}: not enough memory to read this {what}") from None
    size = f"{len(raw) / 2**20:.1f} MiB"
    try:
        return _parse(path, raw, max_depth, what, max_values)
    except MemoryError:  # a MemoryError has no message of its own
        raise FileProblem(
            f"{path}: not enough memory to parse this {what} ({size} of JSON)"
        ) from None


def _parse(path, raw: bytes, max_depth: int, what: str, max_values: int):
    shape = json_shape(raw)
    if shape.depth > max_depth:
        raise FileProblem(
            f"{path}: nested {shape.depth} levels deep, more than a partui {what} has ({max_depth})"
        )
    if shape.values > max_values:
        raise FileProblem(
            f"{path}: about {shape.values / 1e6:.1f} million values, more than a partui "
            f"{what} holds ({max_values / 1e6:g} million)"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FileProblem(f"{path}: not a partui {what} (not UTF-8 text)") from None
    del raw
    try:
        # NaN, Infinity and 1e400 parse; the field checks refuse them
        return json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise FileProblem(f"{path}: the key {shown(exc.key)} appears twice in one object") from None
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
