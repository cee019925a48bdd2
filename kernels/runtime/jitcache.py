"""Where numba keeps the compiled kernels, and whether this install's kernels are in it yet.

numba caches next to the source by default, which fails quietly in a site-packages the
user cannot write (every run then compiles afresh, for seconds). partui points numba at the
user's cache folder instead: $NUMBA_CACHE_DIR if set, else $XDG_CACHE_HOME/partui/numba,
else ~/.cache/partui/numba. PARTUI_NUMBA_CACHE=0 keeps nothing on disk.

No numpy or numba here: the command line asks "compiled yet?" before loading either.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from pathlib import Path

# The modules whose compiled code the stamp vouches for: a change to any of them means
# numba compiles again, and so the stamp changes too.
# Paths under partui/kernels/.
_SOURCES = (
    "forward/native.py",
    "grad/native.py",
    "grad/network.py",
    "grad/stamps.py",
    "grad/stamps_native.py",
    "forward/vectorized.py",
    "forward/compute.py",
    "plan/strategies.py",
    "model/layers.py",
    "runtime/scratch.py",
    "runtime/atomics.py",
    "warmup.py",
)


def cache_enabled() -> bool:
    return os.environ.get("PARTUI_NUMBA_CACHE", "1") != "0"


def _cache_folder() -> str:
    # os.path, not pathlib: configure() runs on every start, `partui --help` included
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.environ["NUMBA_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "partui", "numba")


def cache_dir() -> Path:
    from pathlib import Path

    return Path(_cache_folder())


def configure() -> None:
    """Point numba at cache_dir(). numba reads NUMBA_CACHE_DIR once, when it is imported
    (and worker processes inherit it); if numba is loaded already, set its config too."""
    os.environ.setdefault("NUMBA_CACHE_DIR", _cache_folder())
    config = sys.modules.get("numba.core.config")
    if config is not None and not getattr(config, "CACHE_DIR", ""):
        config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]  # type: ignore[attr-defined]


def _stamp(layer: str) -> Path:
    import hashlib  # here, not at import: it loads OpenSSL
    from importlib.metadata import PackageNotFoundError, version
    from pathlib import Path

    here = Path(__file__).resolve().parent.parent  # partui/kernels
    # numba's cache is per source path (each install its own), so the stamp is too
    h = hashlib.sha256(f"{sys.version}\0{here}".encode())
    try:
        h.update(version("numba").encode())
    except PackageNotFoundError:
        pass
    for name in _SOURCES:
        h.update(name.encode())
        h.update((here / name).read_bytes())
    return cache_dir() / f"partui-kernels-{h.hexdigest()[:16]}-{layer}.done"


def missing(layers) -> list[str]:
    """The layers whose kernels compile_kernels() has not put in the disk cache yet."""
    if not cache_enabled():
        return list(layers)
    return [name for name in layers if not _stamp(name).exists()]


def mark_compiled(layer: str) -> None:
    if not cache_enabled():
        return
    stamp = _stamp(layer)
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.touch()
    except OSError:  # no writable cache folder: the next run compiles again, nothing worse
        pass
