"""Every valid layer x kernel x strategy x executor combination, verified against float64, with its
spans.

One Engine for the module so thread and process pools are reused, as the dashboard reuses them.
"""

import os
import threading
from collections import Counter

import numpy as np
import psutil
import pytest

from partui.kernels.model import reference
from partui.kernels.model.layers import LAYERS, make_input, make_params
from partui.kernels.plan.pass_axes import TRANSFER
from partui.kernels.plan.strategies import (
    EXECUTORS,
    KERNELS,
    STRATEGIES,
    not_applicable_reason,
    valid_combinations,
)
from partui.profiles.records.config import RunConfig
from partui.profiles.records.events import EventLog, RepeatDone, RunFinished, RunStarted, SpanDone
from partui.profiles.run.engine import Engine

BATCH = 3
MAIN_TID = threading.get_native_id()

# Dask runs every layer's forward through the same shard task whatever the kernel: here with
# the vectorized kernel; the loops kernel on Dask is in tests/test_dask.py (one LocalCluster)
ELSEWHERE = {("dask", "loops")}
COMBOS = [
    (name, s, k, e)
    for name, layer in LAYERS.items()
    for s, k, e in valid_combinations(layer)
    if (e, k) not in ELSEWHERE
]

# Workers 3 on a batch of 5: every split is uneven (5 samples, 64 channels, 11 rows, 32 input
# channels over 3); batch 1 leaves workers without work; conv1 has a single input channel.
UNEVEN = [
    ("conv2", s, "vectorized", e, 3, 5)
    for s in ("batch", "channel", "spatial", "filter", "hybrid")
    for e in ("threads", "processes")
] + [
    ("conv2", "spatial", "loops", "processes", 3, 5),
    ("conv1", "filter", "vectorized", "threads", 3, 5),
    ("pool2", "spatial", "vectorized", "threads", 3, 5),
    ("gelu1", "spatial", "loops", "threads", 3, 5),
    ("linear1", "filter", "vectorized", "processes", 3, 5),
    ("linear2", "hybrid", "loops", "threads", 3, 5),
    ("network", "pipeline", "vectorized", "threads", 3, 5),
    ("network", "pipeline", "loops", "threads", 3, 2),
    ("conv2", "hybrid", "vectorized", "threads", 3, 1),
    ("linear1", "batch", "vectorized", "processes", 3, 1),
]


@pytest.fixture(scope="module")
def engine():
    with Engine() as eng:
        yield eng


_refs: dict = {}


def expected_output(name, batch):
    """float64 reference of the run's input, computed here from the seeded arrays (seed 0)."""
    if (name, batch) not in _refs:
        layer = LAYERS[name]
        _refs[name, batch] = reference.forward(
            layer, make_input(layer, batch, 0), make_params(layer, 0)
        )
    return _refs[name, batch]


def expected_tasks(name, strategy, workers, batch):
    """How many tasks a repeat has: the split rules of the strategies, written out."""
    layer = LAYERS[name]
    nch = layer.out_shape[0]
    if strategy == "none":
        return 1
    if strategy == "batch":
        return min(workers, batch)
    if strategy == "channel":
        return min(workers, nch)
    if strategy == "spatial":
        return min(workers, layer.out_shape[1])
    if strategy == "hybrid":
        return min(workers, batch) * min(2, nch)
    if strategy == "filter":  # input-channel groups, then a reduction cut by batch
        return min(workers, layer.in_shape[0]) + min(workers, batch)
    if strategy == "pipeline":  # stages x micro-batches
        return min(workers, 13) * min(4 * workers, batch)
    raise AssertionError(strategy)


def check_run(engine, name, strategy, kernel, executor, workers, batch):
    cfg = RunConfig(
        name,
        strategy=strategy,
        kernel=kernel,
        executor=executor,
        workers=workers,
        batch=batch,
        repeats=1,
        warmup=0,
    )
    result = engine.run(cfg, keep_arrays=True)
    layer = LAYERS[name]

    # verified, by the engine and again here
    want = expected_output(name, batch)
    out = result.arrays["output"]
    assert out.shape == want.shape and out.dtype == np.float32
    tol = 1e-4 * np.abs(want).max()
    err = float(np.abs(out.astype(np.float64) - want).max())
    assert result.ok, result.error
    assert result.max_abs_error <= result.tolerance
    assert err <= tol and abs(err - result.max_abs_error) <= 1e-12 + 1e-9 * err
    assert result.blas_threads == (workers if executor == "blas" else 1)

    # spans: one per task per repeat (a Dask run's transfers apart: tests/test_dask.py)
    spans = [s for s in result.spans if s.phase != TRANSFER]
    n_tasks = expected_tasks(name, strategy, workers, batch)
    assert result.tasks == n_tasks
    assert Counter((s.repeat, s.task) for s in spans) == {(0, t): 1 for t in range(n_tasks)}
    pool_size = 1 if executor in ("inline", "blas") else workers
    for s in spans:
        assert 0 <= s.worker < pool_size
        assert s.start_ns < s.end_ns
        assert s.units > 0
    if strategy == "filter":
        assert {s.phase for s in spans} == {0, 1}
    else:
        assert sum(s.units for s in spans) == layer.flops(batch)

    # who ran them
    tids = {s.tid for s in spans}
    by_worker = {}
    for s in spans:
        by_worker.setdefault(s.worker, set()).add(s.tid)
    assert all(len(t) == 1 for t in by_worker.values()), (
        "a worker index names one thread or process"
    )
    if executor in ("inline", "blas"):
        assert tids == {MAIN_TID}
    elif executor == "threads" and strategy != "pipeline":  # the caller is worker 0
        live = {t.id for t in psutil.Process().threads()}
        assert by_worker.get(0, {MAIN_TID}) == {MAIN_TID} and tids <= live
        assert all(MAIN_TID not in t for w, t in by_worker.items() if w > 0)
    elif executor == "native-region":  # numba's pool: the caller is worker 0
        live = {t.id for t in psutil.Process().threads()}
        assert by_worker.get(0, {MAIN_TID}) == {MAIN_TID} and tids <= live
        assert all(MAIN_TID not in t for w, t in by_worker.items() if w > 0)
    elif executor in ("threads", "threads-dynamic"):  # threads of the pool only
        live = {t.id for t in psutil.Process().threads()}
        assert MAIN_TID not in tids and tids <= live
    elif executor == "dask":
        pids = {w.pid for w in engine.executor("dask", workers).lanes}
        assert os.getpid() not in tids and tids <= pids
    else:
        pids = set(engine.executor("processes", workers).pids)
        assert os.getpid() not in tids and tids <= pids
    return result


@pytest.mark.parametrize("name,strategy,kernel,executor", COMBOS, ids=["-".join(c) for c in COMBOS])
def test_combination(engine, name, strategy, kernel, executor):
    check_run(engine, name, strategy, kernel, executor, 1 if executor == "inline" else 2, BATCH)


@pytest.mark.parametrize(
    "name,strategy,kernel,executor,workers,batch",
    UNEVEN,
    ids=["-".join(map(str, c)) for c in UNEVEN],
)
def test_uneven_split(engine, name, strategy, kernel, executor, workers, batch):
    assert not_applicable_reason(LAYERS[name], strategy, kernel, executor, workers) is None
    check_run(engine, name, strategy, kernel, executor, workers, batch)


def test_the_matrix_covers_every_axis():
    """Each name of each axis is valid somewhere, and every refusal says 'not applicable'."""
    assert {c[1] for c in COMBOS} == set(STRATEGIES)
    assert {c[2] for c in COMBOS} == set(KERNELS)
    assert {c[3] for c in COMBOS} == set(EXECUTORS)
    refused = 0
    for name, layer in LAYERS.items():
        for s in STRATEGIES:
            for k in KERNELS:
                for e in EXECUTORS:
                    reason = not_applicable_reason(layer, s, k, e, 1 if e == "inline" else 2)
                    elsewhere = (e, k) in ELSEWHERE and (s, k, e) in valid_combinations(layer)
                    if (name, s, k, e) in COMBOS or elsewhere:
                        assert reason is None
                    else:
                        refused += 1
                        assert "not applicable" in reason and "\n" not in reason
    assert refused > 0
    # three combinations that cannot run, named outright
    assert (
        ("linear1", "spatial", "vectorized", "threads") not in COMBOS
        and ("conv2", "pipeline", "vectorized", "threads") not in COMBOS
        and ("conv2", "none", "loops", "blas") not in COMBOS
    )


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_warmups_are_not_counted_and_events_flow(engine, executor):
    log = EventLog()
    cfg = RunConfig(
        "conv2", strategy="channel", executor=executor, workers=2, batch=4, repeats=3, warmup=2
    )
    result = engine.run(cfg, emit=log)
    assert len(result.times_ms) == 3 and all(t > 0 for t in result.times_ms)
    assert result.min_ms <= result.median_ms <= result.max_ms
    assert sorted({s.repeat for s in result.spans}) == [0, 1, 2]
    assert [e.repeat for e in log.of(RepeatDone)] == [-2, -1, 0, 1, 2]
    assert len(log.of(SpanDone)) == 2 * 5  # warm-up spans are shown live, not counted
    assert len(log.of(RunStarted)) == 1 and len(log.of(RunFinished)) == 1
    # a pool hands tasks to whichever worker is free: one worker may take both
    assert len(result.worker_busy_ms) == 2 and sum(result.worker_busy_ms) > 0
