"""Each memory-lab kernel gives the right arithmetic, natively (numba) and as plain Python."""

import re
import threading

import numpy as np
import pytest

from partui.kernels.lab import counters, mountain, partition, stride, traversal
from partui.kernels.lab.asm import loop_bodies
from partui.kernels.model import reference


def run_threads(targets):
    threads = [threading.Thread(target=t) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


@pytest.mark.parametrize("kind", ["plain", "atomic"])
@pytest.mark.parametrize("padded", [False, True])
def test_counters_reach_their_counts_with_two_threads(kind, padded):
    fn = getattr(counters.native(), f"count_{kind}")
    c = counters.make_counters(2, 64)
    slots = counters.slots(2, padded, 64)
    n = 200_000
    run_threads([lambda s=s: fn(c, s, n) for s in slots])
    assert [int(c[s]) for s in slots] == [n, n]
    assert int(c.sum()) == 2 * n  # nothing written elsewhere


def test_atomic_add_is_atomic_on_one_shared_counter():
    # Two threads on the SAME counter: only a locked add keeps every increment.
    fn = counters.native().count_atomic
    c = counters.make_counters(2, 64)
    n = 300_000
    run_threads([lambda: fn(c, 0, n)] * 2)
    assert c[0] == 2 * n


def test_counter_layouts():
    assert counters.slots(3, False, 64) == [0, 1, 2]
    assert counters.slots(3, True, 64) == [0, 8, 16]  # 64 bytes apart
    c = counters.make_counters(4, 64)
    assert c.ctypes.data % 64 == 0 and c.size >= 4 * 8


def test_python_counters_match():
    c = np.zeros(16, np.int64)
    counters.count_plain(c, 3, 7)
    counters.count_atomic(c, 5, 4)
    assert c[3] == 7 and c[5] == 4 and c.sum() == 11


MEMORY_INCREMENT = re.compile(r"\b(inc|add|xadd)q\s+(\S+,\s*)?-?\w*\(%")


def compiled_asm(fn) -> str:
    import numba

    from partui.kernels.runtime import atomics

    atomics.register()
    f = numba.njit(nogil=True)(fn)  # uncached, so it can be inspected
    f(counters.make_counters(1, 64), 0, 3)
    return f.inspect_asm(f.signatures[0])


def naive_increments(c, slot, n):
    for _ in range(n):
        c[slot] += 1


def test_plain_increment_stores_every_time_unlocked_and_atomic_is_locked():
    """In the compiled loop: plain = an unlocked increment of memory, atomic = a locked one;
    a naive `c[slot] += 1` loop does not increment memory inside any loop (the check can fail)."""
    plain = loop_bodies(compiled_asm(counters.count_plain))
    assert any(MEMORY_INCREMENT.search(b) for b in plain)
    assert not any("lock" in b for b in plain)
    atomic = loop_bodies(compiled_asm(counters.count_atomic))
    assert any(re.search(r"lock\s+(inc|add|xadd)q", b) for b in atomic)
    naive = loop_bodies(compiled_asm(naive_increments))
    assert not any(MEMORY_INCREMENT.search(b) for b in naive)


@pytest.mark.parametrize("s", [1, 3, 16, 64])
def test_strided_sum(s):
    a = np.random.default_rng(s).random(1000).astype(np.float32)
    expected = a[::s].astype(np.float64).sum()
    assert stride.native().strided_sum(a, s) == pytest.approx(expected, rel=1e-5)
    assert stride.strided_sum(a, s) == pytest.approx(expected, rel=1e-6)


def test_mountain_kernels():
    k = mountain.native()
    a = np.ones(3000, np.float32)
    assert k.read_sum(a, 5) == 15000
    assert mountain.numpy_read_sum(a, 2) == 6000
    k.read_modify_write(a, 4)
    assert (a == 5).all()
    b = np.ones(10, np.float32)
    mountain.read_modify_write(b, 2)
    assert (b == 3).all() and mountain.read_sum(b, 2) == 60


def test_traversal_sums_agree():
    m = np.random.default_rng(1).integers(0, 9, (70, 45)).astype(np.float32)
    expected = float(m.sum(dtype=np.float64))
    k = traversal.native()
    for fn in (k.sum_rows, k.sum_columns, traversal.numpy_sum_rows, traversal.numpy_sum_columns):
        assert fn(m) == expected


def test_conv_layouts_match_the_reference():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 5, 7, 6)).astype(np.float32)
    w = rng.standard_normal((4, 5, 3, 3)).astype(np.float32)
    ref = reference.conv2d(x.astype(np.float64), w.astype(np.float64), np.zeros(4))
    k = traversal.native()
    out = np.empty((2, 4, 5, 4), np.float32)
    k.conv_nchw(x, w, out)
    out_hwc = np.empty((2, 5, 4, 4), np.float32)
    k.conv_nhwc(
        np.ascontiguousarray(x.transpose(0, 2, 3, 1)),
        np.ascontiguousarray(w.transpose(0, 2, 3, 1)),
        out_hwc,
    )
    np.testing.assert_allclose(out, ref, atol=1e-4)
    np.testing.assert_allclose(out_hwc.transpose(0, 3, 1, 2), ref, atol=1e-4)


@pytest.mark.parametrize("length", [37, 64, 1000])
@pytest.mark.parametrize("threads", [2, 3])
def test_partition_sweeps_cover_every_element_once(length, threads):
    for make in (partition.cyclic_sweeps, partition.block_sweeps):
        seen = []
        for k in range(threads):
            for s, e in make(length, k, threads):
                seen.extend(range(s, e, threads))
        assert sorted(seen) == list(range(length))
    sweeps = partition.block_sweeps(length, 0, threads)
    pieces = partition.split_sweeps(sweeps, threads, 5)
    flat = [i for s, e in pieces for i in range(s, e, threads)]
    assert flat == [i for s, e in sweeps for i in range(s, e, threads)]
    assert all(len(range(s, e, threads)) <= 5 for s, e in pieces)


@pytest.mark.parametrize("layout", ["cyclic", "block", "one"])
@pytest.mark.parametrize("impl", ["native", "numpy"])
def test_partition_updates_every_element_passes_times(impl, layout):
    from partui.profiles.lab.experiments.partition import partition_jobs

    a = np.zeros(1001, np.float32)
    jobs = partition_jobs(a, impl, layout, 2, passes=3, chunk=100, kern=partition.native())
    assert len(jobs) == (1 if layout == "one" else 2)
    run_threads([lambda job=job: [chunk() for chunk in job] for job in jobs])
    assert (a == 3).all()


def test_partition_python_kernel():
    a = np.zeros(10, np.float32)
    partition.add_one(a, np.array([1]), np.array([10]), 3, 2)
    assert a.tolist() == [0, 2, 0, 0, 2, 0, 0, 2, 0, 0]
