"""How partial gradients meet: the one interface a new executor needs.

A task that computes gradients of part of the work (some samples, some output
channels) asks the combiner where to write them (`target`), then hands them in
(`deposit`). After the phase, the combiner's own jobs (`reduce_ranges`) finish
the sum. Two combiners, as the teaching material shows them:

- `reduce`: one buffer per task in the run's arrays (`<acc>.partials`, shape
  (slots, *acc)); nothing is shared while tasks run; a combine phase then sums
  the buffers, cut into ranges of the flat accumulator so every worker sums a
  share. No lock, one extra pass over slots x parameters.
- `locked`: one shared accumulator; a task computes into its own scratch buffer,
  then adds it into the accumulator under a lock. No combine phase, but the
  adds are serialized: the lock is where workers wait.

The lock must exclude threads and processes alike: it is an advisory file lock
(`flock`) on a file the run creates, taken through a fresh open file each time
(flock conflicts between open files, also in one process).

A Dask cluster shares no memory, so the two combines there move whole gradients instead
(`profiles.dask_train`): `reduce` is a tree of pairwise adds run on the workers
(`tree_levels`: W-1 gradients move between workers, the sum lands on worker 0), `gather`
brings every worker's gradient here and sums it (`gather_sum`: W gradients in). Either
way the sum then goes to every worker, which applies the same update to its own copy of
the weights.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

from partui.kernels.plan.pass_axes import COMBINES  # noqa: F401 (the names, numpy-free)
from partui.kernels.plan.strategies import split_range
from partui.kernels.runtime.scratch import Scratch


@contextlib.contextmanager
def file_lock(path: str):
    """An exclusive lock shared by every thread and process that names `path`."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the last descriptor of the open file releases the lock


class Combiner:
    """Base: `slots` partial buffers for an accumulator named `acc` in the run's arrays."""

    name = "?"

    def partial_shapes(self, acc: str, shape: tuple[int, ...], slots: int) -> dict:
        """Extra arrays the run must allocate for `acc` with `slots` tasks."""
        return {}

    def target(self, arrays: dict, acc: str, slot: int, scratch: Scratch) -> np.ndarray:
        """Where task `slot` writes its partial gradients (same shape as arrays[acc])."""
        raise NotImplementedError

    def deposit(self, arrays: dict, acc: str, buf: np.ndarray, lock: str | None) -> None:
        """Hand in what `target` returned, once written."""

    def reduce_ranges(self, size: int, workers: int) -> list[tuple[int, int]]:
        """Ranges of the flat accumulator for the combine phase's jobs (none: nothing to do)."""
        return []

    def reduce(self, arrays: dict, acc: str, lo: int, hi: int, native: bool = False) -> None:
        """One combine-phase job: the flat accumulator's [lo, hi) (`native`: one numba pass)."""


class ReduceCombiner(Combiner):
    name = "reduce"

    def partial_shapes(self, acc, shape, slots):
        return {f"{acc}.partials": (slots, *shape)}

    def target(self, arrays, acc, slot, scratch):
        return arrays[f"{acc}.partials"][slot]

    def reduce_ranges(self, size, workers):
        return split_range(size, workers)

    def reduce(self, arrays, acc, lo, hi, native=False):
        parts = arrays[f"{acc}.partials"]
        parts = parts.reshape(parts.shape[0], -1)
        if native:
            from partui.kernels.grad.native import sum_slots

            sum_slots(parts, arrays[acc].reshape(-1), lo, hi)
            return
        parts = parts[:, lo:hi]
        out = arrays[acc].reshape(-1)[lo:hi]
        np.copyto(out, parts[0])
        for k in range(1, parts.shape[0]):
            out += parts[k]


class LockedCombiner(Combiner):
    name = "locked"

    def target(self, arrays, acc, slot, scratch):
        return scratch.get(f"combine.{acc}", arrays[acc].shape)

    def deposit(self, arrays, acc, buf, lock):
        with file_lock(lock):
            arrays[acc] += buf


def tree_levels(n: int) -> list[list[tuple[int, int]]]:
    """The pairwise adds of a tree reduction of `n` partial sums, level by level: each level's
    (left, right) index pairs into the previous level's results (an odd one out is carried
    up as the level's last). The final sum is where item 0 was."""
    levels = []
    while n > 1:
        levels.append([(j, j + 1) for j in range(0, n - 1, 2)])
        n = (n + 1) // 2
    return levels


def gather_sum(parts: list[np.ndarray]) -> np.ndarray:
    """Gather-and-average's combine: the partial gradients summed in order (each already
    scaled by 1/batch, so the sum is the batch's mean gradient)."""
    total = np.array(parts[0], np.float32)
    for g in parts[1:]:
        total += g
    return total


COMBINERS: dict[str, Combiner] = {"reduce": ReduceCombiner(), "locked": LockedCombiner()}
