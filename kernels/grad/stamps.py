"""Version stamps on Hogwild!'s shared weights: how stale each gradient was, and which writes
overlapped another worker's write of the same parameter block.

A block is one layer's weight or bias (`blocks`). Each block owns one 64-byte line of an
int64 counter array (so two blocks' counters never share a cache line):

- word VERSION: writes of the block committed so far;
- word WRITERS: writes begun (high bits, from BEGUN_SHIFT) and writes under way (low bits),
  changed by one atomic add, so begin and end are ordered against every other writer's.

A worker reads the versions before its step reads the weights (`read_versions`). For each
block it then writes: `begin_write`, the update, `end_write`. The staleness of that
gradient is the number of versions committed between the read and this write (a worker's
own previous write is committed before its next read, so every one counted is another
worker's). The write overlapped another if a writer was under way when it began, or one
began before it ended: both sides of an overlapping pair count it.

These are plain Python on numpy arrays (the tests drive them through hand-written
interleavings); `stamps_native` compiles the same functions, where `atomic_add` becomes a
locked read-modify-write, into the GIL-free update.
"""

from __future__ import annotations

import numpy as np

from partui.kernels.runtime.atomics import atomic_add

LINE_WORDS = 8  # int64 words per block: one 64-byte cache line
VERSION, WRITERS = 0, 1
BEGUN_SHIFT = 24  # writers under way in the low 24 bits, writes begun above them
UNDER_WAY_MASK = (1 << BEGUN_SHIFT) - 1


def blocks(layout) -> np.ndarray:
    """Edges of the parameter blocks in the flat vector, in layout order: block b is
    [edges[b], edges[b + 1])."""
    spans = sorted((off, off + int(np.prod(shape))) for off, shape in layout.values())
    return np.array([lo for lo, _ in spans] + [spans[-1][1]], np.int64)


def counter_words(nblocks: int) -> int:
    return nblocks * LINE_WORDS


def read_versions(counters, seen) -> None:
    """seen[b] = block b's committed version now (before the step reads the weights)."""
    for b in range(seen.shape[0]):
        seen[b] = atomic_add(counters, b * LINE_WORDS + VERSION, 0)


def begin_write(counters, b):
    """A write of block b begins: returns (writes begun before it, writes under way then)."""
    old = atomic_add(counters, b * LINE_WORDS + WRITERS, (1 << BEGUN_SHIFT) + 1)
    return old >> BEGUN_SHIFT, old & UNDER_WAY_MASK


def end_write(counters, b, seen_b, begun_before, under_way):
    """The write of block b (begun as `begin_write` said) is done: returns (staleness,
    1 if it overlapped another write of the block else 0)."""
    version = atomic_add(counters, b * LINE_WORDS + VERSION, 1)
    old = atomic_add(counters, b * LINE_WORDS + WRITERS, -1)
    begun_by_end = old >> BEGUN_SHIFT
    overlapped = 1 if under_way > 0 or begun_by_end > begun_before + 1 else 0
    return version - seen_b, overlapped
