"""Hogwild!'s version stamps: the counter logic against hand-written interleavings, the native
update under forced interleaving on threads, real runs (staleness > 0 when workers
interleave, 0 by construction for sync), and the step phases per worker."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from partui.kernels.grad import stamps
from partui.kernels.plan.pass_axes import BACKWARD, COMBINE, FORWARD, UPDATE
from partui.profiles.records.events import Span
from partui.profiles.records.train_config import TrainConfig
from partui.profiles.store import snapshot
from partui.profiles.train import datasets, measures
from partui.profiles.train.trainer import Trainer
from partui.tui.cli import main as cli


def _counters(nblocks=2):
    return np.zeros(stamps.counter_words(nblocks), np.int64)


def _write(counters, b, seen):
    """A whole write of block b with nothing in between: (staleness, overlapped)."""
    begun, under_way = stamps.begin_write(counters, b)
    return stamps.end_write(counters, b, seen[b], begun, under_way)


def test_staleness_counts_other_workers_writes_between_read_and_write():
    c = _counters()
    seen_a, seen_b, seen_c = (np.zeros(2, np.int64) for _ in range(3))
    stamps.read_versions(c, seen_a)  # A reads
    stamps.read_versions(c, seen_b)  # B reads the same versions
    stamps.read_versions(c, seen_c)  # and C
    assert _write(c, 0, seen_a) == (0, 0)  # A writes first: nothing between
    assert _write(c, 0, seen_b) == (1, 0)  # B's gradient missed A's write
    assert _write(c, 1, seen_b) == (0, 0)  # block 1 nobody else wrote
    stamps.read_versions(c, seen_a)  # A reads again: its own write is not counted
    assert seen_a.tolist() == [2, 1]
    assert _write(c, 0, seen_a) == (0, 0)
    assert _write(c, 1, seen_a) == (0, 0)
    # C read before all of that: block 1 was written by B, then A
    assert _write(c, 1, seen_c) == (2, 0)
    assert stamps.version(c, 0) == 3 and stamps.version(c, 1) == 3


def test_overlapping_writes_count_on_both_sides_and_only_then():
    c = _counters()
    seen = np.zeros(2, np.int64)
    a = stamps.begin_write(c, 0)  # A begins
    b = stamps.begin_write(c, 0)  # B begins while A writes
    assert a == (0, 0) and b == (0, 1)  # (version, writers under way) when each began
    assert stamps.end_write(c, 0, seen[0], *a) == (0, 1)  # A ends: B is under way
    assert stamps.end_write(c, 0, seen[0], *b) == (1, 1)  # B saw A under way
    # the other block and later writes of this one are untouched by that overlap
    assert _write(c, 1, seen) == (0, 0)
    assert _write(c, 0, np.array([2, 1])) == (0, 0)
    # nested: E inside D's write; D overlapped (E committed while D wrote), E too
    d = stamps.begin_write(c, 1)
    e = stamps.begin_write(c, 1)
    assert stamps.end_write(c, 1, 1, *e) == (0, 1)
    assert stamps.end_write(c, 1, 1, *d) == (1, 1)
    # F begins after D and E ended: no overlap, though both committed since F's read
    f = stamps.begin_write(c, 1)
    assert stamps.end_write(c, 1, 1, *f) == (2, 0)
    assert c[stamps.LINE_WORDS] & stamps.UNDER_WAY_MASK == 0  # nobody left writing


def test_blocks_are_each_layers_weight_and_bias():
    from partui.kernels.grad import training

    edges = stamps.blocks(training.NETWORK_LAYOUT)
    assert len(edges) - 1 == len(training.NETWORK_LAYOUT) == 12
    assert edges[0] == 0 and edges[-1] == training.NETWORK_PARAMS
    assert np.all(np.diff(edges) > 0)


@pytest.mark.slow  # compiles the stamped update on a cold cache
def test_native_stamps_under_forced_interleaving_on_threads():
    """Two threads, each read -> barrier -> write in turn: the second writer's gradient is
    one version stale on every block; the update is plain SGD."""
    from partui.kernels.grad import stamps_native

    edges = np.array([0, 3, 8], np.int64)
    c = _counters()
    p = np.ones(8, np.float32)
    grads = [np.full(8, 1.0, np.float32), np.full(8, 2.0, np.float32)]
    stale = [np.zeros(2, np.int64), np.zeros(2, np.int64)]
    over = [0, 0]
    read = threading.Barrier(2)
    turn = [threading.Event(), threading.Event()]
    turn[0].set()

    def worker(i):
        seen = np.zeros(2, np.int64)
        stamps_native.read_versions(c, seen)
        read.wait()  # both have read before either writes
        turn[i].wait()
        over[i] = stamps_native.stamped_sgd(
            p, grads[i], p, c, edges, seen, stale[i], np.float32(0.5), np.float32(0.0), 1
        )
        if i == 0:
            turn[1].set()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert stale[0].tolist() == [0, 0] and stale[1].tolist() == [1, 1]
    assert over == [0, 0]
    np.testing.assert_array_equal(p, np.float32(1 - 0.5 * 1 - 0.5 * 2))
    assert stamps.version(c, 0) == 2 and stamps.version(c, 1) == 2


@pytest.fixture(scope="module")
def data():
    return datasets.builtin_letters(240, 32, 0)


def _interleaved(spans) -> bool:
    """Whether one worker's update (its commits) fell between another worker's step start
    (its read of the versions comes a moment after) and that step's own update, in at least
    two of the steps whose spans were kept: then some gradient was stale. (Two: a worker
    descheduled between its step's start and its read could see one such commit first.)
    On a busy machine the two workers can take turns instead, and no gradient is stale."""
    from partui.kernels.plan.pass_axes import FORWARD, UPDATE

    starts = {(s.worker, s.repeat): s.start_ns for s in spans if s.phase == FORWARD}
    updates = [s for s in spans if s.phase == UPDATE]
    inside = 0
    for mine in updates:
        t0 = starts.get((mine.worker, mine.repeat))
        if t0 is not None and any(
            u.worker != mine.worker and t0 < u.start_ns and u.end_ns < mine.start_ns
            for u in updates
        ):
            inside += 1
    return inside >= 2


def _train(data, **kw):
    cfg = TrainConfig(**{"epochs": 1, "train_size": 240, "test_size": 32, **kw})
    return Trainer(cfg, data).run()


@pytest.mark.slow  # a training run of 120 steps
def test_hogwild_workers_that_interleave_show_staleness(data):
    """Tiny batches on two workers: steps interleave, so gradients are stale; every block
    write of every step done is counted. (A step whose loss is not finite is not done: at
    the default learning rate, batches of 2 diverged under some interleavings, so a smaller
    one is used.)"""
    r = _train(data, update="hogwild", batch=2, workers=2, executor="threads", lr=0.005)
    st = r.staleness
    e = r.epochs[-1]
    said = f"{st['updates']} block writes counted; {e.steps} steps done, loss {e.train_loss}"
    assert st["measured"] and e.steps > 0 and st["updates"] == e.steps * 12, said
    assert sum(c for _, c in st["histogram"]) == st["updates"]
    assert {s.worker for s in r.spans} == {0, 1}  # both workers trained
    assert st["p95"] >= st["median"] >= 0
    assert st["max"] > 0 or not _interleaved(r.spans)
    assert r.overlapping_updates is not None and r.overlapping_updates >= 0
    ph = r.epochs[-1].step_phases
    assert ph["straggler_gap_ms"] is None and "by construction" in ph["wait_note"]
    assert sum(w["steps"] for w in ph["workers"]) == 120


def test_sync_staleness_is_zero_by_construction_not_measured(data):
    r = _train(data, batch=40, workers=1, executor="inline")
    st = r.staleness
    assert (st["median"], st["p95"], st["max"]) == (0, 0, 0)
    assert st["measured"] is False and "by construction" in st["note"]
    assert st["histogram"] is None and r.overlapping_updates == 0


def test_hogwild_without_stamps_reports_none(data):
    r = _train(data, update="hogwild", batch=40, workers=1, executor="inline", stamp=False)
    assert r.staleness is None and r.overlapping_updates is None


def _span(worker, phase, start_ms, end_ms, step):
    return Span(worker, 0, int(start_ms * 1e6), int(end_ms * 1e6), 0, phase=phase, repeat=step)


def test_step_phases_against_hand_made_spans():
    """Two sync steps: w0 computes 4 ms then combines 1, w1 computes 6 then updates 1; the
    step lasts 7 ms, so w0 waited 2 and w1 0. Straggler gap: 2 ms, then 1 ms."""
    spans = [
        _span(0, FORWARD, 0, 1, 0),
        _span(0, BACKWARD, 1, 4, 0),
        _span(0, COMBINE, 4, 5, 0),
        _span(1, FORWARD, 0, 2, 0),
        _span(1, BACKWARD, 2, 6, 0),
        _span(1, UPDATE, 6, 7, 0),
        _span(0, FORWARD, 10, 15, 1),
        _span(1, FORWARD, 10, 14, 1),
    ]
    p = measures.step_phases(spans, 2, barrier=True)
    w0, w1 = p["workers"]
    assert w0["steps"] == w1["steps"] == 2 and p["steps"] == 2
    assert w0["compute_ms"] == pytest.approx(4.5) and w1["compute_ms"] == pytest.approx(5.0)
    assert p["recent"][0][0] == pytest.approx([4, 2, 1, 0])
    assert p["recent"][1][0] == pytest.approx([6, 0, 0, 1])
    assert p["recent"][1][1] == pytest.approx([4, 1, 0, 0])  # step 2: w1 waited for w0
    assert p["straggler_gap_ms"] == pytest.approx({"median": 1.5, "max": 2.0})


def test_staleness_summary_is_nearest_rank():
    s = measures.staleness_summary(measures.histogram_counts([0] * 8 + [1] * 10 + [5, 9]))
    # 20 values: the median is the 10th smallest, p95 the 19th
    assert (s["median"], s["p95"], s["max"], s["updates"]) == (1, 5, 9, 20)
    assert s["histogram"] == [[0, 8], [1, 10], [5, 1], [9, 1]]


@pytest.mark.slow  # the CLI trains an epoch
def test_cli_hogwild_json_carries_staleness_and_overlaps(tmp_path, capsys):
    out = tmp_path / "t.json"
    args = ["train", "--update", "hogwild", "--epochs", "1", "--train-size", "128"]
    args += ["--test-size", "32", "--batch", "4", "--workers", "2", "--json", "--out", str(out)]
    assert cli.main(args) == 0
    d = json.loads(capsys.readouterr().out)
    st = d["staleness"]
    assert st["measured"] and st["updates"] == 32 * 12
    assert st["median"] <= st["p95"] <= st["max"]
    assert isinstance(d["overlapping_updates"], int)
    assert d["epochs"][0]["step_phases"]["workers"][0]["compute_ms"] > 0
    loaded = snapshot.load(out).training[0]  # the snapshot keeps and validates them
    assert loaded["staleness"] == st


def test_cli_compare_updates_refuses_an_update_rule(capsys):
    assert cli.main(["train", "--compare-updates", "--update", "sync"]) == 2
    assert "--compare-updates" in capsys.readouterr().err
    assert cli.main(["train", "--target-loss", "1.0"]) == 2


@pytest.mark.slow  # two process workers start
@pytest.mark.processes
def test_hogwild_on_processes_stamps_the_shared_memory(data):
    # the learning rate and the count of steps done as in the threads test above
    r = _train(data, update="hogwild", batch=2, workers=2, executor="processes", lr=0.005)
    st = r.staleness
    e = r.epochs[-1]
    said = f"{st['updates']} block writes counted; {e.steps} steps done, loss {e.train_loss}"
    assert st["measured"] and e.steps > 0 and st["updates"] == e.steps * 12, said
    assert {s.worker for s in r.spans} == {0, 1}
    # a commit of one process inside the other's step is seen: the counters live in the
    # shared memory
    assert st["max"] > 0 or not _interleaved(r.spans)


def test_compare_own_clock_smoothing_and_reach():
    from partui.profiles.train import compare
    from partui.profiles.train.trainer import EpochReport, TrainResult

    # two epochs of 2 steps; the second epoch started 10 s after the first ended (another
    # run's epoch ran meanwhile): the own clock leaves that out
    res = TrainResult(TrainConfig(batch=4), "letters")
    res.loss_curve = [[1, 1.0, 3.0], [2, 2.0, 2.0], [3, 14.0, 1.0], [4, 15.0, 0.5]]
    res.epochs = [
        EpochReport(1, 2, 8, 2.0, 2.5, 2.5, 0.1, 0.1, 4.0, {}, [], eval_s=0.5),
        EpochReport(2, 2, 8, 2.0, 15.5, 0.75, 0.1, 0.1, 4.0, {}, [], eval_s=0.5),
    ]
    assert compare.own_times(res) == pytest.approx([1.0, 2.0, 3.5, 4.5])
    assert compare.running_mean([3.0, 2.0, 1.0, 0.5], 2) == pytest.approx([3.0, 2.5, 1.5, 0.75])
    run = compare.UpdateRun(
        "sync", res, [4, 8, 12, 16], [1.0, 2.0, 3.5, 4.5], [3, 2.5, 1.5, 0.75], 2
    )
    assert compare.reach(run, 1.5) == (12, 3.5)
    assert compare.reach(run, 0.1) == (None, None)


@pytest.mark.slow  # trains both update rules
def test_cli_compare_updates_json(capsys):
    args = ["train", "--compare-updates", "--epochs", "2", "--train-size", "128"]
    args += ["--test-size", "32", "--batch", "8", "--workers", "2", "--json"]
    assert cli.main(args) == 0
    s = json.loads(capsys.readouterr().out)["compare_updates"]
    assert set(s["runs"]) == {"sync", "hogwild"}
    target = s["target_loss"]
    for r in s["runs"].values():
        assert r["images_per_s"] > 0 and r["final_loss"] >= 0
        # the default target is the higher final loss: both runs reach it
        assert r["images_to_target"] is not None and r["images_to_target"] % 8 == 0
        assert 0 < r["seconds_to_target"] <= r["own_seconds"]
        assert r["final_loss"] <= target + 1e-9
    assert s["runs"]["sync"]["staleness"]["measured"] is False
    assert s["runs"]["hogwild"]["staleness"]["measured"] is True
