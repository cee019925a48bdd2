"""What a Dask worker runs to measure the transport itself (partui scaling): arrays of a
given size made where they are asked for, and tasks that only touch what they receive.

Module-level functions, so Dask pickles them by reference.
"""

from __future__ import annotations

import numpy as np


def make_bytes(nbytes: int, salt: int) -> np.ndarray:
    """An array of `nbytes` bytes (at least one float32) made on this worker; `salt` makes
    every call's result a new object, so no worker already holds it."""
    a = np.empty(max(1, nbytes // 4), np.float32)
    a.fill(salt)
    return a


def touch(a: np.ndarray) -> int:
    """Receives `a` (Dask fetches it from where it was made); returns its size."""
    return int(a.nbytes)


def nothing(*_args) -> int:
    """A task that does no work: what Dask itself costs per task."""
    return 0
