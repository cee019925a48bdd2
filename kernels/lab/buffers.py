"""Arrays whose first element starts a cache line, so 'adjacent' and 'padded' mean what they say."""

from __future__ import annotations

import numpy as np

LINE_FALLBACK = 64


def aligned_empty(count: int, dtype, align: int = 4096) -> np.ndarray:
    """An uninitialised 1-D array of `count` elements starting on an `align`-byte boundary."""
    dtype = np.dtype(dtype)
    raw = np.empty(count * dtype.itemsize + align, dtype=np.uint8)
    offset = (-raw.ctypes.data) % align
    return raw[offset : offset + count * dtype.itemsize].view(dtype)


def aligned_zeros(count: int, dtype, align: int = 4096) -> np.ndarray:
    a = aligned_empty(count, dtype, align)
    a[...] = 0
    return a
