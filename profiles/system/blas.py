"""BLAS thread control through threadpoolctl, with one controller per process."""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time


@functools.lru_cache(maxsize=1)
def controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


# After a call on more than one thread, OpenBLAS's threads spin a while before they sleep:
# a run timed in that window finds a core taken (docs/PERFORMANCE.md). SPIN_S: that window,
# with a margin.
SPIN_S = 0.3
_threaded_until = [0.0]  # monotonic time until which BLAS threads may still be spinning


@contextlib.contextmanager
def limit(threads: int):
    """Context manager: BLAS libraries of this process run with `threads` threads."""
    ctl = controller()
    if not ctl.select(user_api="blas").lib_controllers:
        yield
        return
    try:
        with ctl.limit(limits=threads, user_api="blas"):
            yield
    finally:
        if threads > 1:
            _threaded_until[0] = time.monotonic() + SPIN_S


def settle(window_s: float = 0.005, most_s: float = SPIN_S) -> float:
    """Before timing: when BLAS ran on several threads within the last SPIN_S, wait until
    this process stops using CPU (a `window_s` stretch under a tenth busy, with no other
    thread of it runnable), at most `most_s`. Returns the seconds waited (0 when nothing
    threaded ran lately)."""
    if time.monotonic() >= _threaded_until[0]:
        return 0.0
    t0 = time.monotonic()
    while time.monotonic() - t0 < most_s:
        c0 = time.process_time()
        time.sleep(window_s)
        # on a busy machine a spinning thread may wait out the window for a core, using no
        # CPU: it is still runnable, and not quiet
        if time.process_time() - c0 < 0.1 * window_s and not _others_runnable():
            break
    _threaded_until[0] = 0.0
    return time.monotonic() - t0


def _others_runnable() -> bool:
    """Another thread of this process is running or waiting for a core (Linux; False where
    /proc cannot tell)."""
    me = str(threading.get_native_id())
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return False
    for tid in tids:
        if tid == me:
            continue
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "R":
                    return True
        except (OSError, IndexError):
            continue  # ended meanwhile
    return False


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
