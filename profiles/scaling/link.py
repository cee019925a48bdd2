"""A network link as people write it: `10Gbit`, `1.25GB/s`, `50us`, `0.2ms`, `1..1024`.

Free of numpy, so `partui scaling --help` and its usage errors stay light.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_PREFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}
_BINARY = {"ki": 1024.0, "mi": 1024.0**2, "gi": 1024.0**3, "ti": 1024.0**4}
_TIME = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0}
_NUMBER = r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*"
MAX_WORKERS = 1024


class LinkError(ValueError):
    """A link or worker range that cannot be read; the message is one line."""


@dataclass(frozen=True)
class Link:
    """One worker's network link: the latency of a message and the bandwidth of its wire."""

    latency_s: float
    bandwidth_bytes_s: float

    @property
    def seconds_per_byte(self) -> float:
        return 1.0 / self.bandwidth_bytes_s

    def describe(self) -> str:
        return f"{self.bandwidth_bytes_s * 8 / 1e9:g} Gbit/s, {self.latency_s * 1e6:g} us"


def parse_bandwidth(text: str) -> float:
    """Bytes per second from `10Gbit`, `10Gbit/s`, `10Gbps`, `1.25GB/s`, `800MiB/s`."""
    m = re.fullmatch(_NUMBER + r"([a-zA-Z]+)(/s)?\s*", str(text))
    per_byte = _unit_bytes(m.group(2)) if m else None
    if m is None or per_byte is None:
        raise LinkError(
            f"bandwidth {text!r}: write a number and a unit, e.g. 10Gbit, 100Mbit/s, "
            "25Gbps, 1.25GB/s, 800MiB/s"
        )
    value = float(m.group(1)) * per_byte
    if not (value > 0 and math.isfinite(value)):
        raise LinkError(f"bandwidth {text!r}: must be above zero")
    return value


def _unit_bytes(unit: str) -> float | None:
    """Bytes per second of one `unit`: bits are `bit` or `b` (Gbit, Gbps), bytes `B`
    (GB/s, MBps); prefixes decimal (k, M, G, T) or binary (Ki, Mi, Gi, Ti)."""
    if unit.endswith("ps"):
        unit = unit[:-2]
    if unit.lower().endswith("bit"):
        prefix, size = unit[:-3], 1 / 8
    elif unit.endswith("b"):
        prefix, size = unit[:-1], 1 / 8
    elif unit.endswith("B"):
        prefix, size = unit[:-1], 1.0
    else:
        return None
    scale = _PREFIX.get(prefix.lower()) or _BINARY.get(prefix.lower())
    return None if scale is None else scale * size


def parse_latency(text: str) -> float:
    """Seconds from `50us`, `50µs`, `0.2ms`, `100ns`, `1s` (0 is allowed: no latency)."""
    m = re.fullmatch(_NUMBER + r"(ns|us|µs|ms|s)\s*", str(text))
    if m is None:
        raise LinkError(f"latency {text!r}: write a number and a unit, e.g. 50us, 0.2ms, 100ns")
    value = float(m.group(1)) * _TIME[m.group(2)]
    if not (math.isfinite(value) and value <= 10):
        raise LinkError(f"latency {text!r}: must be at most 10 s")
    return value


def parse_workers(text: str) -> tuple[int, int]:
    """(first, last) from `1..1024` or `64` (= 1..64); within 1..MAX_WORKERS."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:\.\.\s*(\d+)\s*)?", str(text))
    if m is None:
        raise LinkError(f"workers {text!r}: write a range like 1..1024, or a count like 64")
    lo, hi = (int(m.group(1)), int(m.group(2))) if m.group(2) else (1, int(m.group(1)))
    if not 1 <= lo <= hi <= MAX_WORKERS:
        raise LinkError(f"workers {text!r}: need 1 <= first <= last <= {MAX_WORKERS}")
    return lo, hi
