"""The kernels' CPU-dependent choices as measured on this CPU, read from the per-CPU cache.

The vectorized convolutions have knobs whose best setting depends on the CPU (its caches,
its vector width, its BLAS): the GEMM's shape (one GEMM per sample, written straight into
the output planes, or one per chunk of patch rows), the samples per chunk, the samples
per native call, and whether the fused network runs a thin convolution direct (no GEMM).
`partui`'s autotune (profiles.bench.autotune) measures them on first use
for the layer shapes partui runs and keeps the winners, with the alternatives it measured,
in a file per CPU: `$XDG_CACHE_HOME/partui/tuning/<cpu key>.json`, the key a hash of the
CPU model, its flags and its cache sizes. Every process (process workers too) reads the same
file, once; a knob that file does not name keeps the rule in kernels.forward.vectorized.

No numpy here: the command line asks "tuned yet?" without loading it.
"""

from __future__ import annotations

import json
import os

TUNING_VERSION = 2  # bumped when the knobs or their meaning change: older files are ignored
_state: dict = {}  # "choices": {shape key: {knob: value}} once loaded


def cache_folder() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "partui", "tuning")


def _cpuinfo() -> tuple[str, str]:
    model, flags = "", ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not model:
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = " ".join(sorted(value.split()))
                if model and flags:
                    break
    except OSError:
        pass
    return model or "unknown CPU", flags


def cpu_identity() -> dict:
    """What the cache is keyed by: the CPU model, its flags, and its cache sizes (sysfs)."""
    from partui.kernels.runtime import caches

    model, flags = _cpuinfo()
    sizes = [f"L{c['level']}{(c['type'] or '')[:1]}={c['size']}" for c in caches.caches()]
    return {"cpu_model": model, "flags": flags, "caches": " ".join(sizes)}


def cpu_key(identity: dict | None = None) -> str:
    import hashlib

    ident = identity or cpu_identity()
    text = f"v{TUNING_VERSION}\0{ident['cpu_model']}\0{ident['flags']}\0{ident['caches']}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_path() -> str:
    return os.path.join(cache_folder(), f"{cpu_key()}.json")


def enabled() -> bool:
    """PARTUI_AUTOTUNE=0: the rules only, no file read or written."""
    return os.environ.get("PARTUI_AUTOTUNE", "1") != "0"


def read_file(path: str | None = None) -> dict | None:
    """The tuning file for this CPU as it is on disk, or None (absent, unreadable, another
    version, another CPU)."""
    path = path or cache_path()
    try:
        with open(path) as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != TUNING_VERSION:
        return None
    chosen = data.get("choices")
    if not isinstance(chosen, dict) or not all(
        isinstance(knobs, dict)
        and all(isinstance(k, str) and type(v) in (int, bool) for k, v in knobs.items())
        for knobs in chosen.values()
    ):
        return None  # a file edited by hand or damaged: the rules, and the next run retunes
    if not isinstance(data.get("measured", {}), dict):
        return None
    return data


def choices() -> dict:
    """{shape key: {knob: value}} for this CPU (empty: the rules), read once per process."""
    if "choices" not in _state:
        data = read_file() if enabled() else None
        _state["choices"] = dict(data["choices"]) if data else {}
    return _state["choices"]


def knob(shape: str, name: str, default):
    """The tuned value of knob `name` for layer shape `shape`, else `default`."""
    value = choices().get(shape, {}).get(name)
    return default if value is None else value


def knob_set(shape: str) -> dict:
    """Every tuned knob of layer shape `shape` on this CPU (empty: the rules)."""
    return dict(choices().get(shape, {}))


def use(chosen: dict | None) -> None:
    """Take these choices now (None: read the file again at the next question)."""
    if chosen is None:
        _state.pop("choices", None)
    else:
        _state["choices"] = dict(chosen)


def conv_shape(c: int, h: int, w: int, oc: int) -> str:
    """The key of a convolution's knobs: its input channels, size and output channels."""
    return f"conv {c}x{h}x{w}->{oc}"
