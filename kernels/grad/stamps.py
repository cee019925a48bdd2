"""Version stamps on Hogwild!'s shared weights: how stale each gradient was, and which writes
overlapped another worker's write of the same parameter block.

A block is one layer's weight or bias (`blocks`). Each block owns one 64-byte line of an
int64 counter array (so two blocks' counters never share a cache line), and uses one word
of it: the writes committed so far (its version) from COMMIT_SHIFT up, the writes under
way below. A write changes the word twice, each time by one atomic add: +1 when it
begins, +(1 << COMMIT_SHIFT) - 1 when it ends (committed one more, one fewer under way).
One word and two adds keep every begin and end in one order with every other writer's,
and each locked add drains the core's store buffer: fewer of them cost less.

A worker reads the versions before its step reads the weights (`read_versions`). For each
block it then writes: `begin_write`, the update, `end_write`. The staleness of that
gradient is the number of versions committed between the read and this write (a worker's
own previous write is committed before its next read, so every one counted is another
worker's). The write overlapped another if a writer was under way when it began, is
still under way when it ends, or committed meanwhile: both sides of an overlapping pair
count it.

These are plain Python on numpy arrays (the tests drive them through hand-written
interleavings); `stamps_native` compiles the same functions, where `atomic_add` becomes a
locked read-modify-write, into the GIL-free update.
"""

from __future__ import annotations

import numpy as np

from partui.kernels.runtime.atomics import atomic_add, atomic_load

LINE_WORDS = 8  # int64 words per block: one 64-byte cache line
COMMIT_SHIFT = 24  # writes under way in the low 24 bits, writes committed above them
UNDER_WAY_MASK = (1 << COMMIT_SHIFT) - 1
END = (1 << COMMIT_SHIFT) - 1  # one more committed, one fewer under way


def blocks(layout) -> np.ndarray:
    """Edges of the parameter blocks in the flat vector, in layout order: block b is
    [edges[b], edges[b + 1])."""
    spans = sorted((off, off + int(np.prod(shape))) for off, shape in layout.values())
    return np.array([lo for lo, _ in spans] + [spans[-1][1]], np.int64)


def counter_words(nblocks: int) -> int:
    return nblocks * LINE_WORDS


def version(counters, b):
    """Block b's committed writes."""
    return atomic_load(counters, b * LINE_WORDS) >> COMMIT_SHIFT


def read_versions(counters, seen) -> None:
    """seen[b] = block b's version now (before the step reads the weights)."""
    for b in range(seen.shape[0]):
        seen[b] = atomic_load(counters, b * LINE_WORDS) >> COMMIT_SHIFT


def begin_write(counters, b):
    """A write of block b begins: returns (its version then, writes under way then)."""
    old = atomic_add(counters, b * LINE_WORDS, 1)
    return old >> COMMIT_SHIFT, old & UNDER_WAY_MASK


def end_write(counters, b, seen_b, version_at_begin, under_way):
    """The write of block b (begun as `begin_write` said) is done: returns (staleness,
    1 if it overlapped another write of the block else 0)."""
    old = atomic_add(counters, b * LINE_WORDS, END)
    committed = old >> COMMIT_SHIFT
    others_now = (old & UNDER_WAY_MASK) - 1
    overlapped = 1 if under_way > 0 or others_now > 0 or committed > version_at_begin else 0
    return committed - seen_b, overlapped
