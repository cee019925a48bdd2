"""Lazy numba compilation shared by the lab's kernel modules."""

from __future__ import annotations

import threading
from types import SimpleNamespace

_lock = threading.Lock()


def compile_all(*funcs, fastmath: bool = False, cache: bool = True) -> SimpleNamespace:
    """The functions compiled with numba (nogil, cached on disk unless `cache` is False), by
    name. numba compiles each one at its first call; callers warm up before they time.
    Code loaded from numba's disk cache cannot be inspected (`inspect_asm`): kernels whose
    machine code an experiment checks are compiled with `cache=False`.
    """
    with _lock:  # numba and the overload registry are imported/registered once
        import numba

        from partui.kernels.runtime import atomics

        atomics.register()
        opts = dict(nogil=True, cache=cache, fastmath=fastmath)
        return SimpleNamespace(**{f.__name__: numba.njit(**opts)(f) for f in funcs})


def compile_unvectorized(func, signatures: list):
    """`func` compiled now for `signatures` with LLVM's loop and SLP vectorizers off, so its
    loops use scalar instructions only. numba reads those switches from its config when it
    builds the optimisation passes; they are restored at once, under numba's compiler lock so
    no other compilation sees them. Not cached on disk: a cache entry would not record how it
    was compiled."""
    with _lock:
        import numba
        from numba.core import config
        from numba.core.compiler_lock import global_compiler_lock

        with global_compiler_lock:
            saved = config.LOOP_VECTORIZE, config.SLP_VECTORIZE
            config.LOOP_VECTORIZE, config.SLP_VECTORIZE = 0, 0
            try:
                return numba.njit(signatures, nogil=True)(func)
            finally:
                config.LOOP_VECTORIZE, config.SLP_VECTORIZE = saved
