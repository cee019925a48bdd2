"""BLAS thread control through threadpoolctl, with one controller per process."""

from __future__ import annotations

import contextlib
import functools


@functools.lru_cache(maxsize=1)
def controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def limit(threads: int):
    """Context manager: BLAS libraries of this process run with `threads` threads."""
    ctl = controller()
    if not ctl.select(user_api="blas").lib_controllers:
        return contextlib.nullcontext()
    return ctl.limit(limits=threads, user_api="blas")


def set_threads(threads: int) -> None:
    """Set BLAS threads for the rest of the process (worker processes)."""
    controller().limit(limits=threads, user_api="blas")


def libraries() -> list[dict]:
    """The BLAS / OpenMP libraries loaded, with their thread counts."""
    return [
        {
            k: info.get(k)
            for k in (
                "user_api",
                "internal_api",
                "version",
                "num_threads",
                "threading_layer",
                "filepath",
                "architecture",
            )
        }
        for info in controller().info()
    ]
