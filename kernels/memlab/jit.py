"""Lazy numba compilation shared by the memory-lab modules."""
from __future__ import annotations

import threading
from types import SimpleNamespace

_lock = threading.Lock()


def compile_all(*funcs, fastmath: bool = False) -> SimpleNamespace:
    """The functions compiled with numba (nogil, cached on disk), by name.

    numba compiles each one at its first call; callers warm up before they time.
    """
    with _lock:  # numba and the overload registry are imported/registered once
        import numba

        from . import atomics
        atomics.register()
        opts = dict(nogil=True, cache=True, fastmath=fastmath)
        return SimpleNamespace(**{f.__name__: numba.njit(**opts)(f) for f in funcs})
