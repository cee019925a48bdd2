"""Per-worker scratch buffers, reused across tasks and repeats."""

from __future__ import annotations

import numpy as np


class Cancelled(Exception):
    """A task stopped early because its run was cancelled."""


class Scratch:
    """Named float32 buffers owned by one worker; reallocated only when a shape changes."""

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}
        self.memo: dict = {}  # kernels' derived data reused across repeats (e.g. packed weights)
        # tasks' bound kernel calls (compute.bound_call), for the arrays in calls_arrays
        self.calls: dict = {}
        self.calls_arrays: tuple = ()
        self.state: dict = {}  # what a worker keeps across a training run's jobs (never evicted)

    def get(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape:
            buf = np.empty(shape, dtype=np.float32)
            self._buffers[name] = buf
        return buf

    def drop_calls(self) -> None:
        """Forget the bound calls and the arrays they hold (views into a run's buffers)."""
        self.calls.clear()
        self.calls_arrays = ()


def reshaped_view(arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """`arr` seen with `shape` without copying, or None when that needs a copy."""
    view = arr.view()
    try:
        view.shape = shape
    except AttributeError:
        return None
    return view
