"""Freed heap memory goes back to the system (glibc), and at most every so often."""

from __future__ import annotations

import subprocess
import sys

import pytest

from partui.profiles.system import heap

PINNED_HEAP = """
import psutil
from partui.profiles.system import heap
me = psutil.Process()
blocks = [bytes(4000) + bytes([i % 256]) for i in range(50_000)]  # about 200 MB from malloc
keep = blocks[-1]  # the heap's top stays in use: glibc cannot give the rest back by itself
del blocks
held = me.memory_info().rss
assert heap.trim()
print(held - me.memory_info().rss)
"""


@pytest.mark.skipif(heap._trim_function() is None, reason="the C library has no malloc_trim")
def test_trim_gives_back_what_was_freed_below_a_block_still_in_use():
    out = subprocess.run([sys.executable, "-c", PINNED_HEAP], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) > 100 * 2**20  # of the ~200 MB freed


def test_trims_come_at_most_every_trim_every_s(monkeypatch):
    calls = []
    monkeypatch.setitem(heap._state, "at", float("-inf"))
    monkeypatch.setattr(heap, "trim", lambda: calls.append(1) or True)
    assert heap.trim_now_and_then(100.0)
    assert not heap.trim_now_and_then(100.0 + heap.TRIM_EVERY_S / 2)
    assert heap.trim_now_and_then(100.0 + heap.TRIM_EVERY_S)
    assert len(calls) == 2
