"""How many threads numba's pool has, fixed before numba is imported.

numba sizes its pool by the CPUs the importing thread may run on. partui pins a threads
executor's calling thread to one CPU for a run's repeats, and imports numba lazily, often
inside such a run: the pool would then have one thread for the whole process, and
native-region on two workers would fail. So NUMBA_NUM_THREADS (unless the user set it) is the
CPUs this process may use when partui's kernels package loads, before any run pins a thread.

No numba here: the command line checks a configuration without loading it.
"""

from __future__ import annotations

import os

ENV = "NUMBA_NUM_THREADS"


def allowed_cpus() -> int:
    """The CPUs this thread may run on (all of the process's, before any pin)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def configure() -> None:
    os.environ.setdefault(ENV, str(allowed_cpus()))


def pool_threads() -> int:
    """The threads numba's pool has (or will have), read without importing numba."""
    try:
        return max(1, int(os.environ[ENV]))
    except (KeyError, ValueError):
        return allowed_cpus()
